"""bandwidth: limits throughput to rate KB/s (1 KB = 1000 bytes, as in Toxiproxy); 0 = unlimited."""

import time

from .base import Chunk, Stub, Toxic


class BandwidthToxic(Toxic):
    TYPE = "bandwidth"
    ATTRIBUTES = {"rate": 0}
    SLICE = 0.1  # send big chunks in 100 ms slices so the rate is smooth

    async def pipe(self, stub: Stub) -> None:
        # debt: seconds of sending time owed; carried over so timer error does not accumulate
        debt = 0.0
        while (chunk := await stub.recv()) is not None:
            rate = self.rate * 1000.0
            if rate <= 0:
                debt = 0.0
                stub.send(chunk)
                continue
            data = chunk.data
            slice_bytes = max(int(rate * self.SLICE), 1)
            while data:
                piece, data = data[:slice_bytes], data[slice_bytes:]
                debt += len(piece) / rate
                start = time.monotonic()
                if not await stub.sleep(debt):
                    stub.send(Chunk(piece + data, chunk.t))  # removed: flush the rest now
                    break
                debt -= time.monotonic() - start
                stub.send(Chunk(piece, chunk.t))
