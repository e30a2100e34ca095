"""The recording servers the integration tests rely on actually record what they receive."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import requests


def test_http_server_records_requests_and_answers_from_its_queue(http_server):
    http_server.respond_with(503, "down", times=1)
    first = requests.post(f"{http_server.url}/hook", json={"a": 1}, timeout=5)
    second = requests.post(f"{http_server.url}/hook", json={"a": 2}, timeout=5)
    assert (first.status_code, second.status_code) == (503, 200)
    assert [r.json() for r in http_server.requests] == [{"a": 1}, {"a": 2}]
    assert http_server.requests[0].header("content-type") == "application/json"


def test_smtp_server_keeps_messages_with_attachments(smtp_server):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "hello"
    message.set_content("plain body")
    message.add_attachment(b"x,y\n1,2\n", maintype="text", subtype="csv", filename="r.csv")
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.send_message(message)
    [received] = smtp_server.messages
    assert received.subject == "hello" and received.recipients == ["b@example.com"]
    assert received.body().strip() == "plain body"
    assert received.attachments() == {"r.csv": b"x,y\n1,2\n"}
