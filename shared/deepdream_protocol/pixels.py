"""Pixel-format descriptors: how a host's layer bytes are laid out on the wire.

The plug-ins send pixels exactly as their host hands them over; this descriptor tells the
daemon how to read them.  Pure Python: the plug-ins import it inside Krita and GIMP.
The numeric conversion to and from the engine's float sRGB lives in the daemon
(``deepdream.pixelformat``), nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

#: channel orders a host can hand over; "G" is gray (luma), "A" alpha.
LAYOUTS = ("RGBA", "BGRA", "RGB", "BGR", "GA", "G")
#: sample types and their sizes in bytes.
DTYPES = {"u8": 1, "u16": 2, "f16": 2, "f32": 4}
#: "srgb": perceptual, sRGB-encoded values; "linear": linear-light values (same primaries).
TRANSFERS = ("srgb", "linear")


@dataclass(frozen=True)
class PixelFormat:
    """Interleaved, little-endian samples, rows top to bottom, no padding."""

    layout: str = "RGBA"
    dtype: str = "u8"
    transfer: str = "srgb"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown pixel layout {self.layout!r}; expected one of {LAYOUTS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown sample type {self.dtype!r}; expected one of {tuple(DTYPES)}")
        if self.transfer not in TRANSFERS:
            raise ValueError(f"unknown transfer {self.transfer!r}; expected one of {TRANSFERS}")

    @property
    def channels(self) -> int:
        return len(self.layout)

    @property
    def has_alpha(self) -> bool:
        return self.layout.endswith("A")

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * DTYPES[self.dtype]

    def frame_size(self, width: int, height: int) -> int:
        """Exact byte length of a width × height frame in this format."""
        return width * height * self.bytes_per_pixel

    def to_wire(self) -> dict[str, str]:
        return {"layout": self.layout, "dtype": self.dtype, "transfer": self.transfer}

    @classmethod
    def from_wire(cls, obj: object) -> PixelFormat:
        if not isinstance(obj, dict):
            raise ValueError("pixel format must be a map with layout, dtype and transfer")
        unknown = set(obj) - {"layout", "dtype", "transfer"}
        if unknown:
            # (keys of any type and length: msgpack maps need not have text keys)
            keys = sorted(repr(k) if len(repr(k)) <= 40 else repr(k)[:40] + "..."
                          for k in unknown)
            raise ValueError(f"unknown pixel format keys: {', '.join(keys)}")
        missing = [k for k in ("layout", "dtype", "transfer") if k not in obj]
        if missing:  # (a default would dream 64 bytes of G f32 as RGBA u8, say)
            raise ValueError(f"pixel format lacks {', '.join(missing)}; it names layout, "
                             "dtype and transfer")
        values = {k: obj[k] for k in ("layout", "dtype", "transfer")}
        if not all(isinstance(v, str) for v in values.values()):
            raise ValueError("pixel format fields must be strings")
        return cls(**values)

    def __str__(self) -> str:
        return f"{self.layout} {self.dtype} {self.transfer}"


#: the single-channel mask frame: one sample per pixel, 0 = untouched, max = full dream.
MASK_DTYPES = ("u8", "f32")
