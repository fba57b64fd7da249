"""The interaction channel's ledger: messages sent, seen back, and lost.

A message not seen back within ``deadline_ms`` is lost; an echo that comes
later is ignored (it was already counted). Pure: times passed in (ms).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class ChatInterval:
    sent: int = 0
    lost: int = 0
    rtts_ms: list[float] = field(default_factory=list)

    @property
    def mean_rtt_ms(self) -> float | None:
        return sum(self.rtts_ms) / len(self.rtts_ms) if self.rtts_ms else None


def chat_message(probe_id: str, seq: int, sent_ms: float) -> str:
    return json.dumps({"probe": probe_id, "seq": seq, "sent_ms": round(sent_ms, 3)})


def parse_chat_message(text: str | bytes, probe_id: str) -> int | None:
    """The sequence number of one of our own messages, else None."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("probe") != probe_id:
        return None
    seq = data.get("seq")
    return seq if isinstance(seq, int) else None


class ChatLedger:
    def __init__(self, deadline_ms: float = 3000.0) -> None:
        self._deadline_ms = deadline_ms
        self._pending: OrderedDict[int, float] = OrderedDict()
        self._next_seq = 0
        self._cur = ChatInterval()

    def send(self, now_ms: float) -> int:
        """Register a message sent now; returns its sequence number."""
        seq = self._next_seq
        self._next_seq += 1
        self._pending[seq] = now_ms
        self._cur.sent += 1
        return seq

    def echo(self, seq: int, now_ms: float) -> float | None:
        sent = self._pending.pop(seq, None)
        if sent is None:
            return None
        rtt = max(0.0, now_ms - sent)
        self._cur.rtts_ms.append(rtt)
        return rtt

    def take(self, now_ms: float) -> ChatInterval:
        while self._pending:
            seq, sent = next(iter(self._pending.items()))
            if now_ms - sent < self._deadline_ms:
                break
            del self._pending[seq]
            self._cur.lost += 1
        cur, self._cur = self._cur, ChatInterval()
        return cur
