"""A TCP relay on 127.0.0.1 in front of a server, that a test can cut and restore: an outage of the
server as its clients see it (connections refused, open ones reset) while the server itself, and
whatever it holds in memory (moto's buckets), stays up. Plain sockets and threads."""

from __future__ import annotations

import socket
import struct
import threading

ACCEPT_POLL_S = 0.1  # how soon a cut stops accepting


class Relay:
    """Forwards every connection to ``127.0.0.1:<target_port>`` from its own :attr:`port`."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._accepting = threading.Event()
        self._start_accepting()

    def cut(self) -> None:
        """From now on, connecting is refused (nothing listens on :attr:`port`) and every open
        connection is reset (TCP RST, as from a server that died)."""
        self._accepting.clear()
        self._accept_thread.join()
        with self._lock:
            for sock in self._open:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            self._open.clear()

    def restore(self) -> None:
        """Listen on the same :attr:`port` again."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._start_accepting()

    def close(self) -> None:
        self.cut()

    def _start_accepting(self) -> None:
        self._listener.settimeout(ACCEPT_POLL_S)
        self._accepting.set()
        self._accept_thread = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        self._accept_thread.start()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._accepting.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                try:
                    server = socket.create_connection(("127.0.0.1", self.target_port))
                except OSError:
                    client.close()
                    continue
                client.settimeout(None)
                with self._lock:
                    self._open.update((client, server))
                for source, sink in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes one way until either side closes; then close both."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:  # reset by a cut, or by the other end
            pass
        with self._lock:
            for sock in (source, sink):
                if sock in self._open:
                    self._open.discard(sock)
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    sock.close()
