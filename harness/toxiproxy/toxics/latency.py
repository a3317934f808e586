"""latency: delays each chunk by latency +/- jitter milliseconds from the moment it was read."""

import random
import time

from .base import Stub, Toxic


class LatencyToxic(Toxic):
    TYPE = "latency"
    ATTRIBUTES = {"latency": 0, "jitter": 0}

    def delay(self) -> float:
        delay = self.latency
        if self.jitter > 0:
            delay += random.randint(-self.jitter, self.jitter)
        return max(delay, 0) / 1000.0

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.recv()) is not None:
            wait = self.delay() - (time.monotonic() - chunk.t)
            if await stub.sleep(wait):
                chunk.t += max(wait, 0.0)  # so a latency further down the chain adds to this one
            stub.send(chunk)
