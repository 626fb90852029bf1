"""Who the caller is (issue 18): OpenID Connect bearer tokens (broker.auth.oidc), API keys of machine clients
(broker.auth.apikeys), and the Identity either one yields. The HTTP layer (broker.http.authn) asks them once per
request and hands the Identity to caller_of, the one place a Caller is built."""
