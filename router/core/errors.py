"""The WAMP error and close URIs the router sends, in one place so tests and code agree."""

INVALID_URI = "wamp.error.invalid_uri"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
NOT_AUTHORIZED = "wamp.error.not_authorized"
NO_SUCH_REALM = "wamp.error.no_such_realm"
NO_SUCH_ROLE = "wamp.error.no_such_role"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
NO_AUTH_METHOD = "wamp.error.no_auth_method"
AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
CLOSE_NORMAL = "wamp.close.normal"
CLOSE_LOGOUT = "wamp.close.logout"  # a client's GOODBYE reason: also ends its cookie login
GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
CANCELED = "wamp.error.canceled"
TIMEOUT = "wamp.error.timeout"
# The spec has no URI of its own for "the callee went away mid-call"; like Crossbar, the caller gets CANCELED
# (with the text "callee left"). The alias names the case where it is used.
CALLEE_LOST = CANCELED
PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"
TOO_MANY_SUBSCRIPTIONS = "wampgate.error.too_many_subscriptions"
TOO_MANY_REGISTRATIONS = "wampgate.error.too_many_registrations"
TOO_MANY_CALLS = "wampgate.error.too_many_pending_calls"
# A wildcard SUBSCRIBE/REGISTER whose shape (component count, wildcard positions) would exceed the realm's
# [limits] max_wildcard_shapes: every distinct shape costs every publish or call of that length one lookup.
TOO_MANY_PATTERNS = "wampgate.error.too_many_patterns"
NO_SUCH_SESSION = "wamp.error.no_such_session"
UNAVAILABLE = "wamp.error.unavailable"  # the callee cannot take the call now (e.g. it does not read)
RATE_LIMITED = "wampgate.error.rate_limited"  # flow control refused a request
RATE_LIMITED_CLOSE = "wampgate.close.rate_limited"  # flow control ended a session overloading for too long
TOO_MANY_SESSIONS = "wampgate.error.too_many_sessions"
# The reason in UNSUBSCRIBED / UNREGISTERED when a reload withdrew the permission a subscription or registration had.
AUTHORIZATION_REVOKED = "wamp.authorization.revoked"
# wamp.session.add_testament beyond [limits] max_testaments_per_session (or with testaments turned off: 0), and a
# testament over [limits] max_testament_bytes.
TOO_MANY_TESTAMENTS = "wampgate.error.too_many_testaments"
TESTAMENT_TOO_LARGE = "wampgate.error.testament_too_large"
