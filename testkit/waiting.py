"""Waiting for a condition with a deadline: the one polling loop of the test kit."""
import time


def wait_until(pred, timeout, what, interval=0.05, retry_on=(), context=None, check=None, error=AssertionError):
    """pred()'s first truthy value within timeout seconds; else `error` (AssertionError) naming
    `what`, the last exception of a type in retry_on (raised by servers still settling) and
    context(). check(), if given, runs before every try and may raise to stop early (a server
    that has exited will never become ready)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        if check is not None:
            check()
        try:
            value = pred()
            if value:
                return value
        except retry_on as e:
            last_error = e
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error})" if last_error is not None else ""
            more = f"; {context()}" if context else ""
            raise error(f"timed out after {timeout:.1f}s waiting for {what}{detail}{more}")
        time.sleep(interval)


def wait_for_quiet_consumer(nats, stream, durable, timeout, calm=2.0):
    """Until the JetStream consumer has had nothing pending and nothing unacked for `calm`
    seconds: every event handled, including redeliveries of nak'ed ones."""
    state = {"calm_since": None, "info": None}

    def quiet_long_enough():
        info = state["info"] = nats.consumer_info(stream, durable)
        if info["num_pending"] + info["num_ack_pending"] != 0:
            state["calm_since"] = None
            return False
        state["calm_since"] = state["calm_since"] or time.monotonic()
        return time.monotonic() - state["calm_since"] >= calm

    wait_until(quiet_long_enough, timeout, "the consumer to be quiet", interval=0.25,
               context=lambda: f"consumer info: {state['info']}")
