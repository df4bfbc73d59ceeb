"""The TCP addresses a process tree listens on: how the tests see that a local sweep keeps Ray on loopback."""

from __future__ import annotations

import ipaddress

import psutil


def listening(pid: int) -> set[tuple[str, str]]:
    """(process name, address) of every listening TCP socket of ``pid`` and its descendants (only their
    sockets are read, not the whole machine's: the sampling runs beside the sweep it watches)."""
    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    seen = set()
    for process in tree:
        try:
            name = process.name()
            seen |= {(name, c.laddr.ip) for c in process.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # it ended between the listing and the read
            continue
    return seen


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return address.is_loopback or (
        address.version == 6 and address.ipv4_mapped is not None and address.ipv4_mapped.is_loopback
    )
