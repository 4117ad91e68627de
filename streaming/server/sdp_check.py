"""Checks an SDP offer before anything is built for it: grammar, ICE credentials, DTLS fingerprint and
setup, codecs with their ``rtpmap``, a usable video section whose direction suits the session mode, and
BUNDLE. Every problem is a :class:`BadOffer` naming it, so aiortc only ever sees offers it can answer.

aiortc's own parser trusts its input (asserts, unchecked ``split``/``int``/``next``) and a description it
half-applied leaves transports behind; checking first keeps untrusted SDP away from it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from aiortc import sdp as aiortc_sdp
from aiortc.codecs import CODECS
from livepuppet.errors import InputError

MAX_SDP_BYTES = 64 * 1024
MAX_MEDIA_SECTIONS = 8
MAX_CANDIDATES = 64  # per media section
FINGERPRINT_BYTES = {"sha-256": 32, "sha-384": 48, "sha-512": 64}  # what aiortc's DTLS can verify
SETUP_ROLES = ("actpass", "active", "passive")
RTP_PROFILES = ("UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP", "RTP/SAVPF", "RTP/SAVP")
SCTP_PROFILES = ("UDP/DTLS/SCTP", "DTLS/SCTP")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# What the client's video section must say, per session mode (its own point of view).
VIDEO_DIRECTIONS = {"puppet": ("sendrecv", "sendonly"), "echo": ("sendrecv", "sendonly"),
                    "talk": ("recvonly", "sendrecv"), "view": ("recvonly", "sendrecv")}
_LINE = re.compile(r"^[a-z]=[\x20-\x7e\t]*$")
_ICE_CHARS = re.compile(r"^[A-Za-z0-9+/]+$")
_MLINE = re.compile(r"^m=(audio|video|application) ([0-9]{1,5})(?:/[0-9]+)? ([A-Z/]+)((?: [^ ]+)+)$")
_RTPMAP = re.compile(r"^([0-9]{1,3}) ([A-Za-z0-9_.-]+)/([0-9]{3,6})(?:/([0-9]{1,2}))?$")
_PT_ATTR = re.compile(r"^([0-9]{1,3}|\*) \S")
_CANDIDATE = re.compile(r"^\S+ ([0-9]{1,3}) (udp|tcp|UDP|TCP) ([0-9]{1,10}) (\S+) ([0-9]{1,5}) typ "
                        r"(host|srflx|prflx|relay)(?: \S+ \S+)*$")


class BadOffer(InputError):
    """The SDP offer cannot be used (HTTP 400 with this message)."""


@dataclass
class _Section:
    """One media section as written (before aiortc parses it)."""

    kind: str
    port: int
    profile: str
    formats: list[str]
    attrs: list[tuple[str, str | None]]

    def values(self, name: str) -> list[str]:
        return [v if v is not None else "" for k, v in self.attrs if k == name]

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.attrs)


def check_offer(sdp: str, what: str = "SDP offer", mode: str = "puppet") -> None:
    """Raise :class:`BadOffer` unless ``sdp`` is an offer a ``mode`` session can answer (modes: puppet,
    echo, talk; ``view`` for a WHEP viewer)."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise BadOffer(f"{what} larger than {MAX_SDP_BYTES} bytes")
    if "m=video" not in sdp:
        raise BadOffer(f"the {what} has no video (m=video) section: send a camera track, or for a talking head "
                       "ask to receive video")
    if not sdp.lstrip().startswith("v=0"):
        raise BadOffer(f"{what} must start with 'v=0' (an SDP session description)")
    session, sections = _split(sdp.strip(), what)
    if len(sections) > MAX_MEDIA_SECTIONS:
        raise BadOffer(f"the {what} has {len(sections)} media sections; at most {MAX_MEDIA_SECTIONS} are accepted")
    for name in ("o", "s", "t"):
        if not any(line.startswith(name + "=") for line in session):
            raise BadOffer(f"the {what} has no '{name}=' line")
    session_attrs = [_attr(line) for line in session if line.startswith("a=")]
    mids: list[str] = []
    for index, section in enumerate(sections):
        mids.append(_check_section(section, session_attrs, index, what))
    if len(set(mids)) != len(mids):
        raise BadOffer(f"the {what} repeats a media id (a=mid)")
    _check_bundle(session_attrs, sections, mids, what)
    usable = [s for s in sections if s.kind == "video" and s.port != 0]
    if not usable:
        raise BadOffer(f"the {what}'s video section is disabled (port 0): offer an active video section")
    wanted = VIDEO_DIRECTIONS.get(mode, ("sendrecv",))
    if not any(_direction(s) in wanted for s in usable):
        found = _direction(usable[0])
        raise BadOffer(f"the {what}'s video is {found}; a {mode} session needs {' or '.join(wanted)}")
    try:
        aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser asserts and splits without checks; anything here is bad SDP
        raise BadOffer(f"malformed {what}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc


def _split(sdp: str, what: str) -> tuple[list[str], list[_Section]]:
    lines = sdp.replace("\r\n", "\n").split("\n")
    session: list[str] = []
    sections: list[_Section] = []
    for number, line in enumerate(lines, 1):
        if not _LINE.match(line):
            raise BadOffer(f"{what} line {number} is not '<letter>=<printable text>': {line[:40]!r}")
        if line.startswith("c="):
            _check_connection(line[2:], f"{what} line {number}")
        if line.startswith("m="):
            m = _MLINE.match(line)
            if m is None:
                raise BadOffer(f"{what} line {number}: malformed media line {line[:60]!r}")
            sections.append(_Section(kind=m.group(1), port=int(m.group(2)), profile=m.group(3),
                                     formats=m.group(4).split(), attrs=[]))
        elif sections:
            if line.startswith("a="):
                sections[-1].attrs.append(_attr(line))
        else:
            session.append(line)
    if not sections:
        raise BadOffer(f"the {what} has no media sections")
    return session, sections


def _attr(line: str) -> tuple[str, str | None]:
    name, sep, value = line[2:].partition(":")
    return name, (value if sep else None)


def _session_value(session_attrs: list[tuple[str, str | None]], name: str) -> list[str]:
    return [v if v is not None else "" for k, v in session_attrs if k == name]


def _direction(section: _Section) -> str:
    return next(k for k, _ in section.attrs if k in DIRECTIONS)  # exactly one (checked per section)


def _check_section(section: _Section, session_attrs: list[tuple[str, str | None]], index: int, what: str) -> str:
    where = f"{what} media section {index + 1} ({section.kind})"
    mids = section.values("mid")
    if len(mids) != 1 or not mids[0] or " " in mids[0]:
        raise BadOffer(f"{where} needs exactly one a=mid")
    if section.port > 65535:
        raise BadOffer(f"{where} has port {section.port}")
    _check_ice(section, session_attrs, where)
    _check_dtls(section, session_attrs, where)
    candidates = section.values("candidate")
    if len(candidates) > MAX_CANDIDATES:
        raise BadOffer(f"{where} has {len(candidates)} ICE candidates; at most {MAX_CANDIDATES}")
    for value in candidates:
        _check_candidate(value, where)
    for name in ("sendrecv", "sendonly", "recvonly", "inactive"):
        if section.values(name) and section.values(name) != [""]:
            raise BadOffer(f"{where}: a={name} takes no value")
    if section.kind == "application":
        if section.profile not in SCTP_PROFILES:
            raise BadOffer(f"{where}: data channels need {' or '.join(SCTP_PROFILES)}, not {section.profile}")
        ports = section.values("sctp-port")
        if section.profile == "DTLS/SCTP":
            if not section.formats[0].isdigit():
                raise BadOffer(f"{where}: DTLS/SCTP needs the SCTP port as its format")
        elif len(ports) != 1 or not ports[0].isdigit() or not 0 < int(ports[0]) < 65536:
            raise BadOffer(f"{where} needs one a=sctp-port")
        for value in section.values("max-message-size"):
            if not value.isdigit() or len(value) > 12:
                raise BadOffer(f"{where}: bad a=max-message-size {value!r}")
        return mids[0]
    if section.profile not in RTP_PROFILES:
        raise BadOffer(f"{where}: profile {section.profile} is not secure RTP ({RTP_PROFILES[0]})")
    if sum(1 for k, _ in section.attrs if k in DIRECTIONS) != 1:
        raise BadOffer(f"{where} needs exactly one direction attribute ({', '.join(DIRECTIONS)})")
    if not section.has("rtcp-mux"):
        raise BadOffer(f"{where} must use RTCP multiplexing (a=rtcp-mux)")
    _check_codecs(section, where)
    _check_rtp_attrs(section, where)
    return mids[0]


def _check_ice(section: _Section, session_attrs: list[tuple[str, str | None]], where: str) -> None:
    for name, lo in (("ice-ufrag", 4), ("ice-pwd", 22)):
        values = section.values(name) or _session_value(session_attrs, name)
        if not values:
            raise BadOffer(f"{where} has no a={name} (ICE credentials)")
        value = values[-1]
        if not lo <= len(value) <= 256 or not _ICE_CHARS.match(value):
            raise BadOffer(f"{where}: a={name} must be {lo}–256 ICE characters (letters, digits, + and /)")


def _check_dtls(section: _Section, session_attrs: list[tuple[str, str | None]], where: str) -> None:
    fingerprints = section.values("fingerprint") + _session_value(session_attrs, "fingerprint")
    if not fingerprints:
        raise BadOffer(f"{where} has no a=fingerprint (DTLS certificate fingerprint)")
    usable = 0
    for value in fingerprints:
        bits = value.split()
        if len(bits) != 2:
            raise BadOffer(f"{where}: a=fingerprint must be '<hash> <hex bytes>', got {value[:60]!r}")
        size = FINGERPRINT_BYTES.get(bits[0].lower())
        if size is not None:
            if not re.fullmatch(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){" + str(size - 1) + "}", bits[1]):
                raise BadOffer(f"{where}: a=fingerprint {bits[0]} must be {size} hex bytes separated by ':'")
            usable += 1
    if not usable:
        raise BadOffer(f"{where}: no a=fingerprint uses {', '.join(FINGERPRINT_BYTES)}")
    setups = section.values("setup") or _session_value(session_attrs, "setup")
    if not setups:
        raise BadOffer(f"{where} has no a=setup (DTLS role)")
    if setups[-1] not in SETUP_ROLES:
        raise BadOffer(f"{where}: a=setup must be one of {', '.join(SETUP_ROLES)}, not {setups[-1][:20]!r}")


def _check_candidate(value: str, where: str) -> None:
    m = _CANDIDATE.match(value)
    if m is None:
        raise BadOffer(f"{where}: malformed a=candidate {value[:80]!r}")
    component, port, host = int(m.group(1)), int(m.group(5)), m.group(4)
    if component not in (1, 2) or port > 65535:
        raise BadOffer(f"{where}: a=candidate component {component} or port {port} out of range")
    bits = value.split()
    for i in range(8, len(bits) - 1, 2):
        if bits[i] == "rport" and (not bits[i + 1].isdigit() or int(bits[i + 1]) > 65535):
            raise BadOffer(f"{where}: a=candidate rport {bits[i + 1][:12]!r} out of range")
    if host.endswith(".local") and re.fullmatch(r"[A-Za-z0-9-]{1,63}\.local", host):
        return  # an mDNS name (browsers hide local addresses this way)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise BadOffer(f"{where}: a=candidate address {host[:40]!r} is not an IP address") from None


def _check_codecs(section: _Section, where: str) -> None:
    formats = section.formats
    if not all(f.isdigit() and int(f) < 128 for f in formats):
        raise BadOffer(f"{where}: payload types must be numbers below 128, got {' '.join(formats)[:60]!r}")
    if len(set(formats)) != len(formats):
        raise BadOffer(f"{where} lists a payload type twice")
    mapped: dict[int, str] = {}
    for value in section.values("rtpmap"):
        m = _RTPMAP.match(value)
        if m is None:
            raise BadOffer(f"{where}: malformed a=rtpmap {value[:60]!r} (want '<pt> <codec>/<rate>[/<channels>]')")
        pt = int(m.group(1))
        if pt in mapped or str(pt) not in formats:
            raise BadOffer(f"{where}: a=rtpmap:{pt} is repeated or not in the media line's formats")
        if 64 <= pt <= 95:
            raise BadOffer(f"{where}: payload type {pt} is reserved (it would clash with RTCP)")
        mapped[pt] = m.group(2).lower()
    missing = [f for f in formats if int(f) not in mapped]
    if missing:
        raise BadOffer(f"{where}: payload type {missing[0]} has no a=rtpmap")
    known = {c.mimeType.split("/")[1].lower() for c in CODECS[section.kind]} - {"rtx"}
    if not any(name in known for name in mapped.values()):
        raise BadOffer(f"{where} offers no codec this server speaks ({', '.join(sorted(known))})")


def _check_rtp_attrs(section: _Section, where: str) -> None:
    mapped = {int(v.split(" ", 1)[0]) for v in section.values("rtpmap")}
    for name in ("fmtp", "rtcp-fb"):
        for value in section.values(name):
            m = _PT_ATTR.match(value)
            if m is None or (m.group(1) != "*" and int(m.group(1)) not in mapped) or (
                    name == "fmtp" and m.group(1) == "*"):
                raise BadOffer(f"{where}: a={name} {value[:40]!r} does not name a payload type with an rtpmap")
    for value in section.values("extmap"):
        if not re.fullmatch(r"[0-9]{1,3}(?:/(?:sendrecv|sendonly|recvonly|inactive))? \S+(?: .*)?", value) \
                or not 1 <= int(value.split("/")[0].split()[0]) <= 255:
            raise BadOffer(f"{where}: malformed a=extmap {value[:60]!r}")
    for value in section.values("ssrc"):
        if not re.fullmatch(r"[0-9]{1,10} [A-Za-z-]+:.*", value) or int(value.split()[0]) >= 2 ** 32:
            raise BadOffer(f"{where}: malformed a=ssrc {value[:60]!r}")
    for value in section.values("ssrc-group"):
        bits = value.split()
        if not bits or not all(b.isdigit() and int(b) < 2 ** 32 for b in bits[1:]):
            raise BadOffer(f"{where}: malformed a=ssrc-group {value[:60]!r}")
    for value in section.values("rtcp"):
        bits = value.split(" ", 1)
        if not bits[0].isdigit() or int(bits[0]) > 65535:
            raise BadOffer(f"{where}: malformed a=rtcp {value[:40]!r}")
        if len(bits) > 1:
            _check_connection(bits[1], where)


def _check_connection(value: str, where: str) -> None:
    bits = value.split()
    if len(bits) != 3 or bits[0] != "IN" or bits[1] not in ("IP4", "IP6"):
        raise BadOffer(f"{where}: malformed connection address {value[:40]!r}")
    try:
        ipaddress.ip_address(bits[2])
    except ValueError:
        raise BadOffer(f"{where}: {bits[2][:40]!r} is not an IP address") from None


def _check_bundle(session_attrs: list[tuple[str, str | None]], sections: list[_Section], mids: list[str],
                  what: str) -> None:
    for value in _session_value(session_attrs, "group"):
        bits = value.split()
        if not bits or bits[0] != "BUNDLE":
            continue
        items = bits[1:]
        if not items or any(item not in mids for item in items) or len(set(items)) != len(items):
            raise BadOffer(f"the {what}'s a=group:BUNDLE names media ids that are not in it (or twice)")
        if sections[mids.index(items[0])].port == 0:
            raise BadOffer(f"the {what}'s a=group:BUNDLE starts with a disabled (port 0) section")
