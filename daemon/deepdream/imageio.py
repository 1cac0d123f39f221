"""Image files ⇄ float arrays (H, W, C) in [0, 1] for the command line.

8-bit files go through Pillow; 16-bit PNGs (which Pillow cannot hold in colour) through
``png16``, and TIFFs of 16-, 32- or 64-bit samples, integer or float, through ``tiff``.  Gray
stays gray, alpha stays alpha. Where white is in samples other than 8- and 16-bit integers
follows from their range (see ``_to_unit``).

Writing replaces the file (through a symbolic link: its target) only once the new one is
complete; a file that is write-protected is refused, as cp refuses it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import lzma
import numbers
import os
import shutil
import stat
import struct
import tempfile
import threading
import warnings
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from deepdream_protocol.messages import first_line, number
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from . import png16, tiff
from .pixelformat import clamp_unit

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
_PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


class ImageIOError(ValueError):
    """An image cannot be read or written; the message is one line naming the file."""


@dataclass(frozen=True)
class ImageInfo:
    bits: int  # 8 or 16: the depth its dream is saved in (a 32-bit or float file: 16)
    format: str  # PNG, JPEG, TIFF, ...
    # the file's embedded colour profile (a phone's Display P3, a camera's Adobe RGB): the
    # dream works on the stored values, and its file carries the same profile, so a
    # colour-managed viewer shows the colours the photo had
    icc_profile: bytes | None = None
    # one line for the user on a guess that was made reading it (how 32-bit or float
    # samples were scaled, that only the first frame of an animation is used), else None
    note: str | None = None
    # what the dream's file keeps of the photo's: its print resolution (dots per inch, x
    # and y) and its EXIF block (camera, date, place; "Exif\0\0" and the TIFF structure)
    dpi: tuple[float, float] | None = None
    exif: bytes | None = None


# --- reading -----------------------------------------------------------------------------


#: held while Pillow's warnings are caught (see read_image)
_WARNINGS = threading.Lock()


def read_image(path: str | os.PathLike[str], max_side: int | None = None
               ) -> tuple[np.ndarray, ImageInfo]:
    """Read any Pillow-readable image (and the deep TIFFs Pillow cannot); returns float32
    (H, W, C), C = 1..4, and how its dream is to be written (see ``ImageInfo``).

    ``max_side``: the caller wants no more than about this many pixels along the longer
    side (a guide image).  An 8-bit image much larger comes back reduced by a whole factor,
    to at least twice that, and a JPEG is decoded reduced: a 100-megapixel photo picked as
    a guide needs neither its full size in floats nor the time to decode it."""
    path = Path(path)
    profile, note, frames = None, None, 1
    dpi, exif = None, None
    try:
        # Pillow warns of a "decompression bomb" from 89 megapixels on; this is the user's
        # own file (the daemon has its own --max-pixels), and a size that is too big is the
        # error below.  Its other warnings (a damaged tag) are told in the note, not as a
        # Python warning.  (The lock: the warning filters are the process's, and a daemon
        # reads guide images on several workers' threads.)
        with _WARNINGS, warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("always", UserWarning)
            found = tiff.tags(path)
            if found is not None and found[1].get(258, (8,))[0] in tiff.DEEP_BITS:
                endian, tags = found
                # (a sample may be 8 bytes: the pixel count alone let a float64 RGBA
                # file need four times the memory of the largest 16-bit one)
                _check_size(path, tags.get(256, (0,))[0], tags.get(257, (0,))[0],
                            tags.get(277, (1,))[0] * tags[258][0] // 8)
                raw, declared = tiff.read_deep(path, endian, tags)
                frames = tiff.pages(path)  # (Pillow's n_frames tells the others)
                image, bits, note = _to_unit(raw, path, declared)
                if tags.get(262, (2,))[0] == 0:  # WhiteIsZero
                    image[..., :1] = 1.0 - image[..., :1]
                extra = tags.get(338, (2,))[0] if image.shape[2] in (2, 4) else None
                if extra == 0:  # an unspecified extra channel (a saved selection): not alpha,
                    image = image[..., :-1]  # as Pillow reads 8-bit ones
                elif extra == 1:
                    image = tiff.unpremultiply(image)  # associated alpha: colour times alpha
                image = _upright(image, tags.get(_ORIENTATION, (1,))[0])
                profile = bytes(tags[tiff.ICC_PROFILE]) if tiff.ICC_PROFILE in tags else None
                dpi = _tiff_dpi(tags)
                fmt = "TIFF"
                exif = _tiff_exif_of(path)
            else:
                with Image.open(path) as im:
                    fmt = im.format or "?"
                    profile = im.info.get("icc_profile") or None
                    # (a TIFF's resolution from its own tags: Pillow gives 1 dpi to a
                    # file without, and an inch count as a fraction)
                    dpi = _tiff_dpi(found[1]) if found else _dpi(im.info.get("dpi"))
                    # an animation or a multi-page file (a camera's MPO JPEG keeps only
                    # a preview or a depth map after the photo: nothing to tell)
                    frames = 1 if fmt == "MPO" else getattr(im, "n_frames", 1) or 1
                    if fmt == "PNG" and png16.bit_depth(path) == 16:
                        _check_size(path, *im.size)
                        image, bits = png16.read(path), 16
                        image = png16.keyed(image, im.info.get("transparency"))
                        image = _upright(image, im.getexif().get(_ORIENTATION, 1))
                    else:
                        image, bits, note = _from_pillow(im, path, max_side)
                        if im.mode in _CONVERTED_MODES:
                            # its profile is of the CMYK (Lab...) values, not of the RGB
                            # they were converted to: on the dream it would mislabel them
                            profile = None
                    # once the pixels are read: a PNG's eXIf chunk may follow them
                    exif = im.info.get("exif") if fmt != "TIFF" else _tiff_exif(im)
        for said in dict.fromkeys(str(w.message) for w in warned):
            note = _join(note, f"{path}: {said}")
    except FileNotFoundError:
        raise ImageIOError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageIOError(f"{path} is a folder, not an image file") from None
    except Image.DecompressionBombError:
        raise ImageIOError(_too_big(path)) from None
    except UnidentifiedImageError:
        raise ImageIOError(f"{path}: not an image file Pillow can read") from None
    except MemoryError:
        raise ImageIOError(f"{path}: not enough memory to read the image") from None
    except (tiff.TiffError, png16.PngError) as exc:
        raise ImageIOError(f"{path}: {exc}") from None
    except (OSError, SyntaxError, ValueError, struct.error, zlib.error, lzma.LZMAError,
            EOFError, IndexError) as exc:
        if isinstance(exc, ImageIOError):
            raise
        raise ImageIOError(f"{path}: cannot read the image ({first_line(exc)})") from None
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageIOError(f"{path}: the image has zero width or height")
    if frames > 1:
        many = f"more than {tiff.PAGES_COUNTED}" if frames > tiff.PAGES_COUNTED else frames
        note = _join(note, f"{path}: only the first of its {many} frames is used")
    return image, ImageInfo(bits=bits, format=fmt, icc_profile=profile, note=note, dpi=dpi,
                            exif=exif if isinstance(exif, bytes) and exif else None)


def _tiff_dpi(tags: Mapping[int, tuple[int, ...]]) -> tuple[float, float] | None:
    """X and YResolution in dots per inch (ResolutionUnit 2: inch, 3: centimetre)."""
    unit = tags.get(296, (2,))[0]
    x, y = tags.get(282, (0, 0)), tags.get(283, (0, 0))
    if unit not in (2, 3) or len(x) < 2 or len(y) < 2 or not (x[1] and y[1]):
        return None
    per_inch = 2.54 if unit == 3 else 1.0
    return _dpi((x[0] / x[1] * per_inch, y[0] / y[1] * per_inch))


def _dpi(found: object) -> tuple[float, float] | None:
    """A file's resolution as (x, y) dots per inch, when it gives a sensible one."""
    if (isinstance(found, tuple) and len(found) == 2
            and all(isinstance(v, numbers.Real) and 0 < v < 1e6 for v in found)):
        # (numbers.Real: Pillow gives a JPEG's EXIF resolution as a fraction, IFDRational)
        return round(float(found[0]), 2), round(float(found[1]), 2)  # (PNG: per metre)
    return None


#: a TIFF's own tags that describe the photo (the rest say how its pixels are stored):
#: ImageDescription, Make, Model, Software, DateTime, Artist, Copyright
_TIFF_DESCRIPTIVE = (0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298)
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825


def _described(tags: Image.Exif) -> Image.Exif:
    """The tags that describe the photo (camera, date, place: the descriptive ones and the
    Exif and GPS sub-IFDs), without any that say how pixels are stored or how many."""
    exif = Image.Exif()
    for tag in _TIFF_DESCRIPTIVE:
        if tag in tags:
            exif[tag] = tags[tag]
    for ifd in (_EXIF_IFD, _GPS_IFD):
        sub = tags.get_ifd(ifd)
        if sub:
            exif[ifd] = dict(sub)
    return exif


def _tiff_exif(im: Image.Image) -> bytes | None:
    """A TIFF's EXIF as a block like a JPEG's (``_described``)."""
    try:
        exif = _described(im.getexif())
        return exif.tobytes() if len(exif) else None
    except Exception:  # a damaged block is left out, not the dream
        return None


def _described_of(raw: bytes) -> Image.Exif | None:
    """The tags of the EXIF block ``raw`` that a TIFF may take over (``_described``); None
    if there are none, or ``raw`` cannot be read (a damaged block is left out, not the
    dream)."""
    try:
        exif = Image.Exif()
        exif.load(raw)
        described = _described(exif)
    except Exception:
        return None
    return described if len(described) else None


def _tiff_exif_block(raw: bytes) -> bytes | None:
    """An EXIF block for Pillow's TIFF writer (``_described_of``)."""
    described = _described_of(raw)
    return None if described is None else described.tobytes()


def _tiff_tags_at(raw: bytes) -> Callable[[int], bytes] | None:
    """For ``tiff.encode``: the tags ``_described_of`` ``raw``, as a little-endian IFD placed
    at a given offset."""
    described = _described_of(raw)
    if described is None:
        return None
    described.endian = "<"  # (the file's own byte order)
    return lambda offset: described.tobytes(offset)[len(b"Exif\0\0II*\0") + 4:]


def _tiff_exif_of(path: Path) -> bytes | None:
    """``_tiff_exif`` of a TIFF whose pixels Pillow may not read (deep samples)."""
    try:
        with Image.open(path) as im:
            return _tiff_exif(im)
    except Exception:  # (the pixels were read; the tags are a bonus)
        return None


def exif_for_dream(raw: bytes, width: int, height: int) -> bytes | None:
    """The photo's EXIF as its dream's: upright (the pixels were turned when read), its
    size, and no thumbnail (it would show the photo); None if it cannot be read."""
    try:
        exif = Image.Exif()
        exif.load(raw)
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1
        sub = exif.get_ifd(_EXIF_IFD)  # the Exif IFD: PixelXDimension, PixelYDimension
        for tag, value in ((0xA002, width), (0xA003, height)):
            if tag in sub:
                sub[tag] = value
        return exif.tobytes()  # (IFD0 and its sub-IFDs: the thumbnail's IFD1 stays out)
    except Exception:  # a damaged block is left out, not the dream
        return None


#: the most EXIF a JPEG holds: one APP1 segment (Pillow refuses more, after the dream)
_JPEG_EXIF_MAX = 65533


def _fitted_exif(raw: bytes, limit: int) -> bytes | None:
    """``raw`` within ``limit`` bytes: the longest texts and blobs (a scanner's description,
    a maker note) are left out, longest first, so camera, date and place stay; None if
    it still does not fit."""
    if len(raw) <= limit:
        return raw
    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # (as in exif_for_dream: a damaged block is left out, not the dream)
        return None
    while len(raw) > limit:
        ifds = [exif, exif.get_ifd(_EXIF_IFD)]
        found = [(len(v), ifd, tag) for ifd in ifds for tag, v in ifd.items()
                 if isinstance(v, (bytes, str)) and tag not in (_EXIF_IFD, _GPS_IFD)]
        if not found:
            return None
        _, ifd, tag = max(found, key=lambda f: f[0])
        del ifd[tag]
        raw = exif.tobytes()
    return raw


def _too_big(path: Path) -> str:
    return (f"{path}: the image is too big to read (over {2 * (Image.MAX_IMAGE_PIXELS or 0)} "
            "pixels)")


#: the bytes of a pixel that the size limit allows for: 16-bit RGBA
_LIMIT_PIXEL_BYTES = 8


def _check_size(path: Path, width: int, height: int, pixel_bytes: int = 1) -> None:
    """The size limit Pillow puts on its images, for the files read here; ``pixel_bytes``:
    what one pixel's samples take, held to what a 16-bit RGBA image of that size takes."""
    if not Image.MAX_IMAGE_PIXELS:
        return
    if width * height > 2 * Image.MAX_IMAGE_PIXELS:
        raise ImageIOError(_too_big(path))
    most = 2 * Image.MAX_IMAGE_PIXELS * _LIMIT_PIXEL_BYTES // max(pixel_bytes, 1)
    if width * height > most:
        raise ImageIOError(f"{path}: the image is too big to read (over {most} pixels of "
                           f"{pixel_bytes} bytes each)")


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second.split(': ', 1)[1]}" if first else second


# --- samples that are not 8- or 16-bit levels ----------------------------------------------
#
# A 16-bit unsigned integer sample is 0 (black) to 65535 (white), an 8-bit one 0 to 255.
# Other samples say nothing of where white is, so the range they use decides:
#   integers (32-bit, or signed 16-bit): 0-255 when no sample is above 255 (8-bit values
#     kept in a wider type), else 0-65535 when none is above 65535 (16-bit values: ImageJ,
#     scientific cameras), else 0 to the brightest sample; the dream is saved in 16 bits
#     (8 for 8-bit values);
#   floats (16-, 32-, 64-bit): 0-1 when no sample is above 2 (samples over 1 are highlights
#     past white and clip, as a host's float frames do), else 0-255, 0-65535 or 0 to the
#     brightest sample as for integers; NaN is black, +inf white; saved in 16 bits.
# Negative samples are black.  An image with nothing above zero but something below it is
# refused (it would dream as plain black), as is a float image with no finite sample.
# Every guess but the plain 0-1 float is told in ``ImageInfo.note``.


def _to_unit(raw: np.ndarray, path: Path, declared: bool) -> tuple[np.ndarray, int, str | None]:
    """Samples of any numeric type as float32 in [0, 1], the depth to save the dream in,
    and a note on how they were read. ``declared``: the type says where white is
    (unsigned 8- or 16-bit integers)."""
    if declared:
        top = float(np.iinfo(raw.dtype).max)
        return raw.astype(np.float32) / np.float32(top), 8 if top == 255 else 16, None
    floating = raw.dtype.kind == "f"
    kind = f"{raw.dtype.itemsize * 8}-bit {'float' if floating else 'integer'}"
    finite = raw[np.isfinite(raw)] if floating else raw
    if finite.size == 0:
        raise ImageIOError(f"{path}: no sample is a number (all NaN or infinite)")
    high, low = float(finite.max()), float(finite.min())
    if high <= 0 < -low:
        raise ImageIOError(f"{path}: every {kind} sample is zero or negative (lowest "
                           f"{number(low)}); the picture would be black")
    if floating and high <= 2.0:
        return clamp_unit(raw.astype(np.float32)), 16, None
    levels = ((255.0, "0-255 (8-bit levels)"), (65535.0, "0-65535 (16-bit levels)"),
              (high, f"0-{number(high)} (the brightest sample is white)"))
    top, what = next((top, what) for top, what in levels if high <= top)
    with np.errstate(invalid="ignore", over="ignore"):  # (NaN and inf: clamp_unit's)
        scaled = raw.astype(np.float64) / top if raw.dtype.itemsize > 4 else (
            raw.astype(np.float32) / np.float32(top))
        image = clamp_unit(scaled.astype(np.float32, copy=False))
    note = f"{path}: {kind} samples up to {number(high)} read as {what}"
    if low < 0:
        note += f"; those below zero (down to {number(low)}) as black"
    bits = 8 if top == 255.0 and not floating else 16
    return image, bits, note


_ORIENTATION = 274  # the EXIF/TIFF tag: how the camera was held


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` turned as EXIF ``orientation`` says, as ImageOps.exif_transpose turns
    8-bit photos (that one cannot take 16-bit colour)."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
             7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}
    turn = turns.get(int(orientation))
    return np.ascontiguousarray(turn(image)) if turn is not None else image


#: modes _from_pillow converts to RGB from another colour model
_CONVERTED_MODES = ("CMYK", "LAB", "HSV", "YCbCr")


def _from_pillow(im: Image.Image, path: Path, max_side: int | None = None
                 ) -> tuple[np.ndarray, int, str | None]:
    """An opened Pillow image as float (H, W, C), its depth to save in and a note;
    ``max_side``: see ``read_image``."""
    _check_size(path, *im.size)
    fmt, profile = im.format, im.info.get("icc_profile")
    if max_side and fmt == "JPEG":  # decoded at 1/2 to 1/8 scale, still at least this big
        im.draft(im.mode, (2 * max_side, 2 * max_side))
    im = ImageOps.exif_transpose(im)  # photos shot upright come out upright
    mode = im.mode
    if mode == "CMYK" and profile:  # print colours, as its profile says they look
        im = _cmyk_to_srgb(im, profile)
        mode = im.mode
    # a PNG's tRNS chunk: one colour of an RGB or gray image that is transparent
    keyed = mode in ("1", "L", "RGB", "P") and "transparency" in im.info
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im, dtype=np.float32)[..., None] / 65535.0, 16, None
    if mode == "I" and fmt == "PPM":  # Pillow scales a PGM's levels to 0-65535
        return np.clip(np.asarray(im, np.float32), 0, 65535)[..., None] / 65535.0, 16, None
    if mode in ("I", "F"):  # 32-bit samples: where white is follows from their range
        image, bits, note = _to_unit(np.asarray(im), path, declared=False)
        return image[..., None], bits, note
    if mode in ("1", "L") and not keyed:
        im = im.convert("L")
    elif mode in ("LA", "La") or (mode in ("1", "L") and keyed):
        im = im.convert("LA")
    elif mode in ("RGBA", "RGBa", "PA") or keyed:  # (a palette's colours may be any)
        im = im.convert("RGBA")
    else:
        im = im.convert("RGB")
    factor = max(im.size) // (2 * max_side) if max_side else 1
    if factor > 1:
        im = im.reduce(factor)  # (box averages, as the caller's own downscale would take)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    return (arr[..., None] if arr.ndim == 2 else arr), 8, None


def _cmyk_to_srgb(im: Image.Image, profile: bytes) -> Image.Image:
    """A CMYK image in sRGB through its colour profile (Pillow's own conversion ignores
    the profile: cyan ink becomes (0, 255, 255)); unchanged if the profile is unusable."""
    try:
        from PIL import ImageCms
    except ImportError:  # (a Pillow built without littlecms)
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"),
                                         outputMode="RGB") or im
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im


# --- writing -----------------------------------------------------------------------------


def output_format(path: str | os.PathLike[str]) -> str:
    if not os.fspath(path):
        raise ImageIOError("the output file name is empty; give one, e.g. -o dream.png")
    suffix = Path(path).suffix.lower()
    if Path(path).is_dir():
        raise ImageIOError(f"{path} is a folder; give a file name to save to")
    if os.fspath(path).endswith(("/", os.sep)):  # (Path drops the slash: cp says so too)
        raise ImageIOError(f"{path} names a folder (it ends in a slash), and there is none; "
                           "give a file name to save to")
    if suffix not in FORMATS:
        raise ImageIOError(
            f"{path}: unknown output type {suffix or '(none)'!r}; use .png, .jpg or .tif"
        )
    return FORMATS[suffix]


def fitted_to(fmt: str, image: np.ndarray) -> np.ndarray:
    """``image`` as format ``fmt`` can hold it: a JPEG (no alpha) takes an image whose alpha
    hides nothing (every sample opaque: a screenshot, many PNG exports) without it; any
    other stays as it is, and ``check_output`` refuses what would lose transparency."""
    if fmt == "JPEG" and image.shape[2] in (2, 4) and bool((image[..., -1] >= 1.0).all()):
        return image[..., :-1]
    return image


def output_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` changes: ``path`` itself, or the file a symbolic link
    there points to (the link stays, as cp and a shell's > leave it)."""
    path = Path(path)
    if not path.is_symlink():
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:  # a link to a file not made yet: that file is made
        return Path(os.path.realpath(path))
    except OSError as exc:
        raise ImageIOError(f"{path}: cannot follow the symbolic link "
                           f"({exc.strerror or exc})") from None


def _write_protected(st: os.stat_result, target: Path) -> bool:
    """No write permission for this user, or none for anyone (as root, chmod a-w)."""
    return not os.access(target, os.W_OK) or not st.st_mode & 0o222


def check_output(path: str | os.PathLike[str], channels: int) -> str:
    """Everything about an output path that can be checked before the work: its type, its
    folder, that it is no folder itself, that an existing file may be written, that the
    format keeps ``channels``; the format."""
    fmt = output_format(path)
    path = Path(path)
    target = output_target(path)
    shown = path if target == path else f"{path} (a link to {target})"
    folder = target.parent
    if target.is_dir():
        raise ImageIOError(f"{shown} is a folder; give a file name to save to")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ImageIOError(f"{shown}: the folder {folder} {what}")
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ImageIOError(f"{shown}: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ImageIOError(f"{shown} is not a plain file; give a file name to save to")
    if st is not None and _write_protected(st, target):
        raise ImageIOError(f"{shown}: the file is write-protected; make it writable or give "
                           "another name")
    if st is None:  # a new file: try one (permissions alone do not tell: /sys, as root)
        try:
            fd, probe = tempfile.mkstemp(prefix=".deepdream-", dir=folder)
        except OSError as exc:
            raise ImageIOError(f"{shown}: cannot write into the folder {folder} "
                               f"({exc.strerror or exc})") from None
        os.close(fd)
        os.unlink(probe)
    if fmt == "JPEG" and channels in (2, 4):
        raise ImageIOError(f"{path}: JPEG cannot keep the alpha channel; write .png or .tif")
    return fmt


def _new_file_mode(path: Path) -> int:
    """The mode ``path`` should get: that of the file it replaces, else what the umask
    gives a new file (mkstemp's 0600 would hide the result from everyone else)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _replaceable(target: Path) -> bool:
    """Whether ``target`` may be replaced by a new file renamed over it: a new name, or a
    file of this user's with one name whose folder takes new files. Otherwise (hard links,
    another user's file in a shared folder, a folder that takes no new files) the file is
    rewritten in place, as cp does, so its other names, owner and permissions stay."""
    if not os.access(target.parent, os.W_OK | os.X_OK):
        return False
    try:
        st = target.stat()
    except FileNotFoundError:
        return True
    return st.st_nlink == 1 and (not hasattr(os, "geteuid") or st.st_uid == os.geteuid())


def write_image(path: str | os.PathLike[str], image: np.ndarray, bits: int = 8,
                text: Mapping[str, str] | None = None,
                icc_profile: bytes | None = None,
                dpi: tuple[float, float] | None = None, exif: bytes | None = None) -> None:
    """Write float (H, W, C) in [0, 1] as PNG, JPEG or TIFF (by extension), 8 or 16 bits.

    ``text``: Latin-1 key/value notes stored in a PNG (tEXt chunks; ``png_text`` reads them).
    ``icc_profile``: the colour profile to embed (``ImageInfo.icc_profile`` of the input).
    ``dpi`` and ``exif``: the input's (``ImageInfo``), kept where the format holds them
    (the EXIF in JPEG, PNG and WebP; a TIFF takes its camera, date and place tags).
    A symbolic link is written through (its target changes, the link stays); a
    write-protected file is refused (ImageIOError). The file is encoded in full first,
    into a temporary file that is renamed over the old one, so a failure never leaves a
    partial file (a file with hard links, or another user's, is rewritten in place).
    """
    fmt = check_output(path, image.shape[2])  # (the name as given: a trailing slash counts)
    path = Path(path)
    target = output_target(path)
    if fmt == "JPEG":
        bits = 8
    if text and fmt != "PNG":
        raise ImageIOError(f"{path}: only PNG files keep text notes")
    notes = dict(text or {})
    if exif is not None:
        exif = exif_for_dream(exif, image.shape[1], image.shape[0])

    def encode(f: Any) -> None:
        if bits == 16 and fmt == "PNG":
            f.write(png16.encode(quantise(image, 16), notes, icc_profile, dpi, exif))
        elif bits == 16:
            described = None if exif is None else _tiff_tags_at(exif)
            f.write(tiff.encode(quantise(image, 16), icc_profile, dpi, described))
        else:
            samples = quantise(image, 8)
            im = Image.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples,
                                 _PIL_MODES[samples.shape[2]])
            # (full-resolution colour: 4:2:0 would halve the dream's fine coloured detail)
            options: dict[str, Any] = ({"quality": 95, "subsampling": 0} if fmt == "JPEG"
                                       else {})
            if icc_profile:
                options["icc_profile"] = icc_profile
            if dpi and fmt in ("JPEG", "PNG", "TIFF"):
                options["dpi"] = dpi
            if exif and fmt == "JPEG":
                fitted = _fitted_exif(exif, _JPEG_EXIF_MAX)
                if fitted:
                    options["exif"] = fitted
            elif exif and fmt in ("PNG", "WEBP"):
                options["exif"] = exif
            elif exif and fmt == "TIFF":  # (Pillow writes its tags into the TIFF's own: a
                block = _tiff_exif_block(exif)  # phone's ImageWidth would win)
                if block:
                    options["exif"] = block
            if notes:
                options["pnginfo"] = PngImagePlugin.PngInfo()
                for key, value in notes.items():
                    options["pnginfo"].add_text(key, value)
            im.save(f, fmt, **options)

    try:
        if _replaceable(target):
            _write_and_rename(target, encode)
        else:
            _write_in_place(target, encode)
    except OSError as exc:  # a full disk, a quota: said with the file's name
        raise ImageIOError(f"{path}: cannot save: {exc.strerror or exc}") from None


def _write_and_rename(target: Path, encode: Callable[[Any], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".deepdream-", suffix=target.suffix,
                               dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:  # (owns fd from here: closed whatever happens)
            os.chmod(tmp, _new_file_mode(target))
            encode(f)
            f.flush()
            os.fsync(f.fileno())  # on disk before it takes the name: no empty file after a crash
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_in_place(target: Path, encode: Callable[[Any], None]) -> None:
    """Rewrite ``target`` itself (see ``_replaceable``), encoded in full first and its room
    on the disk taken before the first old byte is overwritten: a full disk leaves it as
    it was."""
    with tempfile.TemporaryFile() as encoded:
        encode(encoded)
        size = encoded.tell()
        encoded.seek(0)
        with open(target, "r+b" if target.exists() else "wb") as f:
            if size and hasattr(os, "posix_fallocate"):  # (not on Windows or macOS)
                try:
                    os.posix_fallocate(f.fileno(), 0, size)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                        raise
                    # (a file system that cannot say: written as before)
            shutil.copyfileobj(encoded, f)
            f.truncate()


def quantise(image: np.ndarray, bits: int) -> np.ndarray:
    """[0, 1] samples as the 8- or 16-bit integers ``write_image`` stores (clipped, rounded)."""
    top = 65535.0 if bits == 16 else 255.0
    scaled = np.rint(np.clip(image, 0.0, 1.0) * top)
    return scaled.astype(np.uint16 if bits == 16 else np.uint8)


def png_text(path: str | os.PathLike[str]) -> dict[str, str]:
    """The text notes (tEXt/iTXt/zTXt before the image data) of a PNG; {} for other files."""
    try:
        with Image.open(path) as im:
            text = getattr(im, "text", None) if im.format == "PNG" else None
            return {k: v for k, v in (text or {}).items() if isinstance(v, str)}
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return {}
