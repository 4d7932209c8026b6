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

# Why an identity could not be proved, as the returnCode claim's code ([{"code": "D"}]).
# One Login gives departments its own letters privately; these are this IdP's, documented in
# the README, each something a department can act on (offer another way, or in person).
RETURN_CODES = {
    "X": "The citizen had no identity document that can be checked online, or stopped.",
    "D": "The identity document could not be confirmed (details did not match, or expired).",
    "F": "The address or fraud check did not confirm the citizen.",
    "K": "The citizen did not answer enough security questions correctly.",
}
