"""slicer: cuts each chunk into slices of average_size +/- size_variation bytes, delay us apart."""

import random

from .base import AttributeError400, Chunk, Stub, Toxic


class SlicerToxic(Toxic):
    TYPE = "slicer"
    ATTRIBUTES = {"average_size": 0, "size_variation": 0, "delay": 0}

    def validate(self, values: dict[str, int]) -> None:
        if values["size_variation"] and values["size_variation"] >= max(values["average_size"], 1):
            raise AttributeError400("size_variation must be smaller than average_size")

    def cuts(self, start: int, end: int) -> list[tuple[int, int]]:
        """Slice boundaries of data[start:end], split in halves until near average_size."""
        avg, var = self.average_size, self.size_variation
        if avg <= 0 or (end - start) - avg <= var:
            return [(start, end)]
        mid = start + (end - start) // 2
        if var:
            mid += random.randint(-var, var)
        mid = min(max(mid, start + 1), end - 1)
        return self.cuts(start, mid) + self.cuts(mid, end)

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.recv()) is not None:
            pieces = self.cuts(0, len(chunk.data))
            for i, (a, b) in enumerate(pieces):
                stub.send(Chunk(chunk.data[a:b], chunk.t))
                if i + 1 < len(pieces) and not await stub.sleep(self.delay / 1e6):
                    stub.send(Chunk(chunk.data[b:], chunk.t))  # removed: the rest in one piece
                    break
