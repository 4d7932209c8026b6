"""GOV.UK One Login's names for verified identity details, as departments ask for them.

A department asks for these in the OIDC `claims` request parameter (userinfo member) and
receives them from the userinfo endpoint; each is a list of One Login's shapes (see
https://docs.sign-in.service.gov.uk/integrate-with-integration-environment/prove-users-identity/).
"""

VOCAB = "https://vocab.account.gov.uk/v1/"
# A JWT signed by the identity-signing key: vot, vtm, sub, aud, iss, nbf, exp, and vc with the
# name parts and birth date.
CORE_IDENTITY_JWT = VOCAB + "coreIdentityJWT"
ADDRESS = VOCAB + "address"
PASSPORT = VOCAB + "passport"
DRIVING_PERMIT = VOCAB + "drivingPermit"
# Why a citizen could not prove their identity, for a department that asked to be told.
RETURN_CODE = VOCAB + "returnCode"
IDENTITY_CLAIMS = (CORE_IDENTITY_JWT, ADDRESS, PASSPORT, DRIVING_PERMIT, RETURN_CODE)

# The keys of the stored details (store.VerifiedIdentity.details) each claim is made from.
DETAILS_OF_CLAIM = {
    CORE_IDENTITY_JWT: ("name", "birthDate"),
    ADDRESS: ("address",),
    PASSPORT: ("passport",),
    DRIVING_PERMIT: ("drivingPermit",),
    RETURN_CODE: (),
}
