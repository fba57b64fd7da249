"""The SDP text of an ICE restart, pure text in and out.

WHEP (``application/trickle-ice-sdpfrag``): the client PATCHes the session's
resource with its new ICE credentials and candidates, ``If-Match: "*"``; the
server answers 200 with its own new credentials and candidates in the same
format (the PATCH itself is in :mod:`probes.joins.whep`).

Janus: the server sends a whole new offer with new credentials and
candidates; the answer is the session's last one with the new local
credentials and candidates put in (:func:`with_ice`), everything else (DTLS
fingerprint and role, codecs, directions) as it was: only ICE restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

MEDIA_TYPE = "application/trickle-ice-sdpfrag"
MAX_FRAGMENT_CHARS = 64 * 1024  # a server's answer is a few lines; refuse more


@dataclass(frozen=True)
class IceCredentials:
    ufrag: str
    pwd: str
    candidates: tuple[str, ...]  # each the text after ``a=candidate:``
    lite: bool = False


class FragmentError(ValueError):
    """The server's fragment lacks what an ICE restart needs."""


def restart_fragment(local: IceCredentials, mid: str) -> str:
    """The PATCH body: new credentials, then the candidates of the bundle's
    first media section (every stream of the session rides on it)."""
    lines = [
        f"a=ice-ufrag:{local.ufrag}",
        f"a=ice-pwd:{local.pwd}",
        "m=audio 9 RTP/AVP 0",
        f"a=mid:{mid}",
        *(f"a=candidate:{c}" for c in local.candidates),
        "a=end-of-candidates",
    ]
    return "\r\n".join(lines) + "\r\n"


def parse_fragment(text: str) -> IceCredentials:
    """The server's new credentials and candidates. Only the first media
    section's candidates count: the session is bundled on it."""
    if len(text) > MAX_FRAGMENT_CHARS:
        raise FragmentError(f"fragment longer than {MAX_FRAGMENT_CHARS} characters")
    return parse_ice(text)


def parse_ice(text: str) -> IceCredentials:
    """The ICE credentials and candidates of an SDP fragment or a whole
    description (the first ``a=ice-ufrag``/``a=ice-pwd``, at session or media
    level, and the candidates up to the end of the first media section: the
    bundle's, which carries every stream)."""
    ufrag = pwd = None
    lite = False
    candidates: list[str] = []
    sections = 0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            sections += 1
        elif line.startswith("a=ice-ufrag:") and ufrag is None:
            ufrag = line.split(":", 1)[1]
        elif line.startswith("a=ice-pwd:") and pwd is None:
            pwd = line.split(":", 1)[1]
        elif line == "a=ice-lite":
            lite = True
        elif line.startswith("a=candidate:") and sections <= 1:
            candidates.append(line.split(":", 1)[1])
    if not ufrag or not pwd:
        raise FragmentError("no a=ice-ufrag / a=ice-pwd in the answer")
    return IceCredentials(ufrag=ufrag, pwd=pwd, candidates=tuple(candidates), lite=lite)


def with_ice(sdp: str, local: IceCredentials) -> str:
    """``sdp`` (the session's last local description) with new ICE
    credentials and candidates: every ``a=ice-ufrag``/``a=ice-pwd`` replaced,
    each media section's candidates replaced by ``local``'s where it had
    candidates before (the same place, ``a=end-of-candidates`` kept where
    there was one), and the ``o=`` line's version raised by one, as a
    renegotiated description's must be. Nothing else changes."""
    out: list[str] = []
    section_had_candidates = False

    def put_candidates() -> None:
        out.extend(f"a=candidate:{c}" for c in local.candidates)

    ufrags = 0
    for line in sdp.splitlines():
        if line.startswith("m="):
            section_had_candidates = False
        if line.startswith("a=candidate:"):
            if not section_had_candidates:
                section_had_candidates = True
                put_candidates()
            continue
        if line.startswith("a=ice-ufrag:"):
            ufrags += 1
            out.append(f"a=ice-ufrag:{local.ufrag}")
        elif line.startswith("a=ice-pwd:"):
            out.append(f"a=ice-pwd:{local.pwd}")
        elif line.startswith("o="):
            out.append(_next_version(line))
        else:
            out.append(line)
    if not ufrags:
        raise FragmentError("the description has no a=ice-ufrag to replace")
    return "\r\n".join(out) + "\r\n"


def _next_version(origin: str) -> str:
    """``o=<user> <session id> <version> <net> <addrtype> <address>``, version + 1."""
    fields = origin.split(" ")
    if len(fields) == 6 and fields[2].isdigit():
        fields[2] = str(int(fields[2]) + 1)
    return " ".join(fields)
