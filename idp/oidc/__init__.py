"""The OpenID Connect protocol: one module per endpoint, Authlib doing the protocol."""
