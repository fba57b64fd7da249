"""The SDP fragments of a WHEP ICE restart (``application/trickle-ice-sdpfrag``).

The client PATCHes the session's resource with its new ICE credentials and
candidates, ``If-Match: "*"``; the server answers 200 with its own new
credentials and candidates in the same format. Pure text in and out: the
PATCH itself is in :mod:`probes.joins.whep`.
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
