"""Sample department services that sign citizens in through the IdP with standard OIDC."""
