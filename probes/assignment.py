"""Work from the collector: the probe registers (labels, capabilities) and
pulls the streams of running shows it should watch, every
``assignment_poll_s``.

The answer is the whole list, so a show that ended or no longer lists a
stream is simply absent and its watcher is stopped. When the collector
cannot be reached or refuses, the probe keeps what it was last given: a
collector outage must not make every probe stop watching a live show.
"""

from __future__ import annotations

import logging
import time

import aiohttp
from pydantic import ValidationError

from probes.config import ProbeConfig, StreamTarget
from qosmon import __version__
from qosmon.model import AssignedStream, ProbeAssignment, ProbeCapabilities, ProbeRegistration

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 5.0
ANSWER_MAX_BYTES = 4 * 1024 * 1024


def capabilities(config: ProbeConfig) -> ProbeCapabilities:
    return ProbeCapabilities(
        joins=["whep", "janus", "demo"],
        video_codecs=["vp8", "h264"],
        audio=True,
        credentials=sorted(config.credentials),
        max_streams=config.max_streams,
    )


def target_for(assigned: AssignedStream, config: ProbeConfig) -> StreamTarget:
    """The probe's own stream settings for an assigned stream."""
    s = assigned.stream
    target = StreamTarget(
        show_id=assigned.show_id, stream_id=s.stream_id, join=s.join, url=s.url,
        mountpoint=s.mountpoint, textroom_room=s.textroom_room, chat=s.chat,
        video_codecs=list(s.video_codecs), audio=s.audio, credential=s.credential,
    )
    return target.with_credentials(config.credentials)


class AssignmentClient:
    """Asks the collector for this probe's streams."""

    def __init__(self, config: ProbeConfig, http: aiohttp.ClientSession) -> None:
        if config.collector_url is None:
            raise ValueError("assignment needs a collector_url")
        self.url = config.collector_url.rstrip("/") + "/api/v1/probes/assignment"
        self.config = config
        self.http = http
        self._auth = {"Authorization": f"Bearer {config.token}"}
        self.last_error: str | None = None

    def __repr__(self) -> str:  # never show the token
        return f"AssignmentClient({self.url!r})"

    async def poll(self) -> list[StreamTarget] | None:
        """This probe's assigned streams now; None when the collector gave no
        usable answer (the caller keeps what it has)."""
        reg = ProbeRegistration(probe=self.config.labels, ts=time.time(),
                                version=__version__, capabilities=capabilities(self.config))
        try:
            async with self.http.post(
                self.url, data=reg.model_dump_json(),
                headers={**self._auth, "Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=POLL_TIMEOUT_S),
            ) as resp:
                body = await resp.content.read(ANSWER_MAX_BYTES + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._failed(f"collector unreachable for assignment: {type(exc).__name__}")
            return None
        if status != 200:
            self._failed(f"collector answered the assignment poll with {status}: "
                         f"{body[:200].decode('utf-8', 'replace')}")
            return None
        if len(body) > ANSWER_MAX_BYTES:
            self._failed("assignment answer over 4 MiB, ignored")
            return None
        try:
            answer = ProbeAssignment.model_validate_json(body)
        except ValidationError as exc:
            self._failed(f"assignment answer not understood: {exc.errors()[0]['msg']}")
            return None
        if self.last_error is not None:
            log.info("assignment: collector answers again")
            self.last_error = None
        if answer.over_capacity:
            log.warning("assignment: %d more streams match this probe than max_streams (%d)",
                        answer.over_capacity, self.config.max_streams)
        targets = []
        for a in answer.streams:
            try:
                targets.append(target_for(a, self.config))
            except ValidationError as exc:
                log.warning("assignment: %s/%s not usable here: %s", a.show_id,
                            a.stream.stream_id, exc.errors()[0]["msg"])
        return targets

    def _failed(self, error: str) -> None:
        if error != self.last_error:
            log.warning("%s; watching what was assigned before", error)
            self.last_error = error
        return None
