"""Real local servers that record what the platform sends them: HTTP (Slack, webhooks, APIs) and SMTP.

Each can be told how to misbehave (an answer, a refusal, a dropped connection) and can run a
callback after it received a message and before it answers (``before_answer``): the moment a
fault test stops the warehouse or kills the sending worker.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.headers.items()}
        return lowered.get(name.lower())


@dataclass
class CannedResponse:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


class RecordingHTTPServer:
    """An HTTP server on 127.0.0.1 that records every request and answers from a queue.

    ``respond_with(503, times=3)`` makes the next three requests get 503; afterwards the answer
    of :meth:`answer` (by default 200 ``{"ok": true}``, or what ``default`` was set to) is given.
    ``before_answer(request)`` runs after a request was recorded and before it is answered.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queue: deque[CannedResponse] = deque()
        self.default = CannedResponse()
        self.before_answer: Callable[[RecordedRequest], None] | None = None
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = RecordedRequest(self.command, self.path, dict(self.headers), body)
                with recorder._lock:
                    recorder.requests.append(request)
                    answer = recorder._queue.popleft() if recorder._queue else recorder.answer(request)
                if recorder.before_answer is not None:
                    recorder.before_answer(request)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, request: RecordedRequest) -> CannedResponse:
        """The answer to ``request`` when nothing is queued (subclasses answer by path)."""
        return self.default

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def respond_with(self, status: int, body: bytes | str | dict = b'{"ok": true}', times: int = 1) -> None:
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        with self._lock:
            self._queue.extend(CannedResponse(status, body) for _ in range(times))

    def start(self) -> RecordingHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RecordingHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _json_answer(data: dict[str, Any]) -> CannedResponse:
    return CannedResponse(200, json.dumps(data).encode())


class SlackApiServer(RecordingHTTPServer):
    """Speaks the Slack Web API calls the provider makes, under ``/api/``, and incoming webhooks elsewhere.

    ``chat.postMessage``, ``conversations.list``, ``files.getUploadURLExternal`` (its upload URL
    points back here, ``/upload/<file id>``), the upload itself and ``files.completeUploadExternal``.
    A channel in :attr:`missing_channels` is answered ``channel_not_found``, as Slack does (HTTP 200).
    Any other path is an incoming webhook: ``ok``.
    """

    CHANNELS = {"reports": "C0REPORTS", "ops": "C0OPS"}

    def __init__(self) -> None:
        super().__init__()
        self.missing_channels: set[str] = set()
        self._files = 0

    def calls(self, method: str) -> list[RecordedRequest]:
        """The requests of one API method (``"chat.postMessage"``) or path prefix (``"/upload/"``)."""
        prefix = method if method.startswith("/") else f"/api/{method}"
        return [r for r in self.requests if r.path.split("?", 1)[0].startswith(prefix)]

    def form(self, request: RecordedRequest) -> dict[str, str]:
        """The parameters of an API call, from its query string or form body."""
        from urllib.parse import parse_qsl, urlsplit

        fields = dict(parse_qsl(urlsplit(request.path).query))
        if "json" not in (request.header("content-type") or "") and request.body:
            fields.update(parse_qsl(request.body.decode()))
        return fields

    def answer(self, request: RecordedRequest) -> CannedResponse:
        path = request.path.split("?", 1)[0]
        if not path.startswith(("/api/", "/upload/")):
            return CannedResponse(200, b"ok", {"Content-Type": "text/plain"})
        if path == "/api/chat.postMessage":
            channel = request.json().get("channel", "")
            if channel.lstrip("#") in self.missing_channels:
                return _json_answer({"ok": False, "error": "channel_not_found"})
            return _json_answer({"ok": True, "channel": channel, "ts": f"1700000000.{len(self.requests):06d}"})
        if path == "/api/conversations.list":
            channels = [{"id": cid, "name": name} for name, cid in self.CHANNELS.items()]
            return _json_answer({"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}})
        if path == "/api/files.getUploadURLExternal":
            self._files += 1
            file_id = f"F{self._files:04d}"
            return _json_answer({"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id})
        if path.startswith("/upload/"):
            return CannedResponse(200, f"OK - {len(request.body)}".encode(), {"Content-Type": "text/plain"})
        if path == "/api/files.completeUploadExternal":
            fields = self.form(request)
            if fields.get("channel_id", "").lstrip("#") in self.missing_channels:
                return _json_answer({"ok": False, "error": "channel_not_found"})
            files = json.loads(fields.get("files") or "[]")
            return _json_answer({"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]})
        return _json_answer({"ok": False, "error": "unknown_method"})


class SilentServer:
    """Accepts TCP connections and never says a word: every client times out."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self._sockets.append(conn)  # held open, never answered

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
        for conn in [*self._sockets, self._listener]:
            conn.close()


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else ""

    def attachments(self) -> dict[str, bytes]:
        return {part.get_filename(): part.get_payload(decode=True) for part in self.message.iter_attachments()}

    def inline_images(self) -> dict[str, bytes]:
        """``Content-ID`` (without ``<>``) -> bytes of every image part the HTML refers to by ``cid:``."""
        return {
            str(part["Content-ID"]).strip("<>"): part.get_payload(decode=True)
            for part in self.message.walk()
            if part.get_content_maintype() == "image" and part["Content-ID"]
        }


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives.

    It can misbehave on purpose: :attr:`refused` recipients get their reply to ``RCPT`` (e.g.
    ``"550 5.1.1 no such user"``), :attr:`mail_reply` answers ``MAIL FROM`` (``"421 ..."``),
    :attr:`data_reply` answers the end of ``DATA`` instead of accepting it (``"451 ..."``), and
    :attr:`drop_after_data` closes the connection once the message is in, before answering.
    ``before_answer(mail)`` runs after a message was kept and before the server says 250.
    """

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[ReceivedMail] = []
        self.refused: dict[str, str] = {}
        self.mail_reply: str | None = None
        self.data_reply: str | None = None
        self.drop_after_data = False
        self.before_answer: Callable[[ReceivedMail], None] | None = None
        sink = self

        class Handler:
            async def handle_MAIL(self, server, session, envelope, address, mail_options):
                if sink.mail_reply:
                    return sink.mail_reply
                envelope.mail_from = address
                return "250 OK"

            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address in sink.refused:
                    return sink.refused[address]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                if sink.drop_after_data:
                    server.transport.close()
                    return "421 closing"
                if sink.data_reply:
                    return sink.data_reply
                message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
                mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message)
                sink.messages.append(mail)
                if sink.before_answer is not None:
                    sink.before_answer(mail)
                return "250 Message accepted for delivery"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
