"""A TCP proxy that can be switched down (refusing service) and up, to take a real server "offline"."""

from __future__ import annotations

import select
import socket
import socketserver
import threading


class SwitchableProxy:
    """Forwards 127.0.0.1:<port> to an upstream server while :attr:`up`; drops connections otherwise."""

    def __init__(self, upstream_host: str, upstream_port: int, *, up: bool = True) -> None:
        self.up = up
        self.connections_refused = 0
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                if not proxy.up:
                    proxy.connections_refused += 1
                    return  # closing at once: the client sees the server drop the connection
                with socket.create_connection((upstream_host, upstream_port)) as upstream:
                    sockets = [self.request, upstream]
                    while True:
                        readable, _, _ = select.select(sockets, [], [], 30)
                        if not readable:
                            return
                        for source in readable:
                            data = source.recv(65536)
                            if not data:
                                return
                            (upstream if source is self.request else self.request).sendall(data)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> SwitchableProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SwitchableProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
