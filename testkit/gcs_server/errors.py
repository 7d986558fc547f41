"""Errors the server answers with (JSON API and OAuth2 formats), and the exceptions that end a
request without an answer."""


class ApiError(Exception):
    """An error answered in the JSON API's format."""

    def __init__(self, status, reason, message, location=None, location_type=None, headers=None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.location = location
        self.location_type = location_type
        self.headers = list(headers or [])

    def body(self):
        err = {"message": self.message, "domain": "global", "reason": self.reason}
        if self.location_type:
            err["locationType"] = self.location_type
        if self.location:
            err["location"] = self.location
        return {"error": {"code": self.status, "message": self.message, "errors": [err]}}


class OAuthError(Exception):
    """An error answered in the OAuth2 token endpoint's format."""

    def __init__(self, status, error, description):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class ClientGone(Exception):
    """The client went away (EOF or timeout) while we were reading its request body."""


class ConnectionDropped(Exception):
    """We dropped the connection on purpose (fault injection)."""


def bad_request(message, reason="invalid"):
    return ApiError(400, reason, message)


def not_found_object(bucket, name):
    return ApiError(404, "notFound", "No such object: %s/%s" % (bucket, name))


def not_found_bucket():
    return ApiError(404, "notFound", "The specified bucket does not exist.")


def precondition_failed(location="If-Match"):
    return ApiError(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.",
                    location=location, location_type="header")


def range_not_satisfiable(size):
    return ApiError(416, "requestedRangeNotSatisfiable", "The requested range cannot be satisfied.",
                    location="Range", location_type="header", headers=[("Content-Range", "bytes */%d" % size)])


def invalid_credentials():
    return ApiError(401, "authError", "Invalid Credentials", location="Authorization", location_type="header",
                    headers=[("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"')])


def fault_error(rule):
    """The ApiError an injected status fault (a control-API rule) answers with."""
    status = int(rule.get("status", 503))
    defaults = {
        429: ("rateLimitExceeded", "The rate of change requests to the object exceeds the rate limit. "
                                   "Please reduce the rate of create, update, and delete requests."),
        500: ("backendError", "Backend Error"),
        502: ("backendError", "Bad Gateway"),
        503: ("backendError", "We encountered an internal error. Please try again."),
        504: ("backendError", "Deadline exceeded."),
        408: ("requestTimeout", "Request timeout."),
    }
    reason, message = defaults.get(status, ("backendError", "Injected failure."))
    headers = []
    if rule.get("retry_after") is not None:
        headers.append(("Retry-After", str(rule["retry_after"])))
    return ApiError(status, rule.get("reason", reason), rule.get("message", message), headers=headers)
