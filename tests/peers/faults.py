"""mitmproxy addon: fault injection in front of a real peer, switched at run time.

Control endpoint (answered by the proxy itself, never forwarded):
  GET  /__fault                 -> the current fault and how many requests it touched
  POST /__fault {"mode": ...}   -> switch; the body's fields depend on the mode:
    none                                  forward untouched
    ec2-error code=.. status=.. [shape=response|error-response] [message=..]
                                          an EC2-shaped XML error: real EC2's
                                          <Response><Errors><Error> (default) or moto's
                                          <ErrorResponse><Errors><Error>
    status status=.. [body=..] [ctype=..] [headers={..}]
                                          a canned HTTP answer
    delay ms=..                           wait, then forward
    hang [ms=..]                          accept, never answer (until ms), then drop
    reset                                 drop the connection without an answer
"""
import asyncio
import json
import uuid
from xml.sax.saxutils import escape

from mitmproxy import http

STATE = {"mode": "none"}
HITS = {"count": 0}


def ec2_error(code: str, message: str, shape: str) -> str:
    request_id = str(uuid.uuid4())
    code, message = escape(code), escape(message)
    if shape == "error-response":
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Type>Sender</Type></Error></Errors><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        f"</Errors><RequestID>{request_id}</RequestID></Response>"
    )


class Faults:
    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.path.startswith("/__fault"):
            if flow.request.method == "POST":
                STATE.clear()
                STATE.update(json.loads(flow.request.get_text() or '{"mode":"none"}'))
                HITS["count"] = 0
            body = json.dumps({**STATE, "hits": HITS["count"]})
            flow.response = http.Response.make(200, body, {"Content-Type": "application/json"})
            return
        mode = STATE.get("mode", "none")
        if mode == "none":
            return
        HITS["count"] += 1
        if mode == "delay":
            await asyncio.sleep(STATE.get("ms", 1000) / 1000)
        elif mode == "ec2-error":
            code = STATE.get("code", "InternalError")
            body = ec2_error(code, STATE.get("message", f"injected {code}"), STATE.get("shape", "response"))
            flow.response = http.Response.make(
                STATE.get("status", 400), body, {"Content-Type": "text/xml;charset=UTF-8"}
            )
        elif mode == "status":
            flow.response = http.Response.make(
                STATE.get("status", 503),
                STATE.get("body", "injected"),
                {"Content-Type": STATE.get("ctype", "text/plain"), **STATE.get("headers", {})},
            )
        elif mode == "reset":
            flow.kill()
        elif mode == "hang":
            await asyncio.sleep(STATE.get("ms", 60000) / 1000)
            flow.kill()


addons = [Faults()]
