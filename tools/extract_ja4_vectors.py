"""Extract JA4 test vectors from FoxIO's JA4 repository (not run by the tests).

For each capture of `pcap/` named on the command line and its expected
output `python/test/testdata/<capture>.json`, the first bytes the client sent
on each TCP connection (its ClientHello records, reassembled in sequence
order) are written with the expected `JA4` to
`native/core/testdata/ja4_vectors.json`, which the Rust and Python tests
read. Needs `dpkt` (`pip install dpkt`, not a project dependency):

    python tools/extract_ja4_vectors.py JA4_REPO tls12.pcap badcurveball.pcap ...
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import dpkt

OUT = Path(__file__).resolve().parents[1] / "native" / "core" / "testdata" / "ja4_vectors.json"


def _packets(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        link = reader.datalink()
        for _, buf in reader:
            yield link, buf


def _ip(link: int, buf: bytes):  # type: ignore[no-untyped-def]
    if link == dpkt.pcap.DLT_EN10MB:
        frame = dpkt.ethernet.Ethernet(buf)
        return frame.data
    if link == dpkt.pcap.DLT_LINUX_SLL:
        return dpkt.sll.SLL(buf).data
    if link in (dpkt.pcap.DLT_RAW, 101, 12):
        return dpkt.ip.IP(buf) if buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
    if link == dpkt.pcap.DLT_NULL:
        return dpkt.loopback.Loopback(buf).data
    return None


def _address(ip) -> str:  # type: ignore[no-untyped-def]
    family = socket.AF_INET if isinstance(ip, dpkt.ip.IP) else socket.AF_INET6
    return socket.inet_ntop(family, ip.src), socket.inet_ntop(family, ip.dst)  # type: ignore[return-value]


def streams(path: Path) -> dict[tuple[str, int, str, int], bytes]:
    """Client bytes per connection, in sequence order, from the first SYN."""
    segments: dict[tuple[str, int, str, int], dict[int, bytes]] = {}
    for link, buf in _packets(path):
        try:
            ip = _ip(link, buf)
        except (dpkt.UnpackError, IndexError):
            continue
        if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(ip.data, dpkt.tcp.TCP):
            continue
        tcp = ip.data
        src, dst = _address(ip)
        key = (src, tcp.sport, dst, tcp.dport)
        if tcp.data:
            segments.setdefault(key, {}).setdefault(tcp.seq, bytes(tcp.data))
    out = {}
    for key, by_seq in segments.items():
        seqs = sorted(by_seq)
        data, expected = b"", seqs[0]
        for seq in seqs:
            if seq != expected:
                break
            data += by_seq[seq]
            expected = (seq + len(by_seq[seq])) & 0xFFFFFFFF
        out[key] = data
    return out


def _hello_records(sent: bytes) -> bytes | None:
    """The records that carry the first handshake message, whole."""
    at, message = 0, b""
    while at + 5 <= len(sent) and sent[at] == 0x16:
        end = at + 5 + int.from_bytes(sent[at + 3 : at + 5], "big")
        message += sent[at + 5 : end]
        at = end
        if len(message) >= 4 and len(message) >= 4 + int.from_bytes(message[1:4], "big"):
            return sent[:at] if at <= len(sent) else None
    return None


def main(argv: list[str]) -> int:
    repo, names = Path(argv[0]), argv[1:]
    vectors: list[dict[str, object]] = []
    seen: set[str] = set()  # one vector per distinct fingerprint
    for name in names:
        data = streams(repo / "pcap" / name)
        expected = json.loads((repo / "python" / "test" / "testdata" / f"{name}.json").read_text())
        for entry in expected:
            if "JA4.1" not in entry or "srcport" not in entry:
                continue
            key = (entry["src"], int(entry["srcport"]), entry["dst"], int(entry["dstport"]))
            sent = data.get(key, b"")
            if not sent.startswith(b"\x16"):
                continue  # a ClientHello after a proxy handshake (SOCKS, CONNECT)
            hello = _hello_records(sent)
            if hello is None or entry["JA4.1"] in seen:
                continue
            seen.add(entry["JA4.1"])
            vectors.append(
                {
                    "capture": name,
                    "stream": entry["stream"],
                    "ja4": entry["JA4.1"],
                    "ja4_r": entry.get("JA4_r.1", ""),
                    "records": hello.hex(),
                }
            )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"{len(vectors)} vectors -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
