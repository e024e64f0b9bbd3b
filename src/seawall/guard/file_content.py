"""File and image parts of chat messages, verified by what their bytes are.

A declared media type and a file name are claims; the bytes are the file. Each
part is decoded and identified by magic bytes and structure (PNG with a valid
IHDR chunk and an IEND, JPEG from SOI to EOI, GIF, WEBP and WAV RIFF containers,
PDF from header to ``%%EOF``, MP3, ZIP and the Office files inside, plain text),
then compared with what the part claims:

- ``file.executable``: ELF, PE ("MZ"), Mach-O, WebAssembly, shebang scripts,
  Java and Android archives, archives holding executables or macros;
- ``file.mismatch``: the bytes are another type than the one declared (a PDF or
  a program sent as ``image/png``);
- ``file.unknown_type``: binary that matches no known type;
- ``file.malformed``: bad base64, or a structure cut short or broken;
- ``file.active_content``: scripts inside an SVG, JavaScript or launch actions
  inside a PDF;
- the injection patterns, on the text of text files, of uncompressed PDF text
  and metadata, and of Word documents (read up to a bound).

Remote URLs are not fetched: a part that points at one returns nothing here.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import urllib.parse
import zipfile
import zlib
from typing import Any

from seawall.guard.detection import Detection, excerpt
from seawall.guard.injection_patterns import check_injection

# How much text of one file the injection patterns read, and how much of a
# compressed Office part is inflated to get it (bounded against zip bombs).
TEXT_LIMIT = 100_000
_INFLATE_LIMIT = 1_000_000
_PDF_STREAM_LIMIT = 2_000_000

_EXECUTABLES = frozenset({
    "application/x-elf", "application/x-msdownload", "application/x-mach-binary",
    "application/wasm", "text/x-script", "application/java-archive",
    "application/vnd.android.package-archive",
})  # fmt: skip
_TEXT_KINDS = frozenset({"text/plain", "text/html", "image/svg+xml"})
_ZIP_KINDS = frozenset({
    "application/zip", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument",
})  # fmt: skip
_ALIASES = {
    "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav", "audio/mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg", "audio/x-mpeg": "audio/mpeg",
    "application/x-pdf": "application/pdf", "audio/x-flac": "audio/flac",
    "audio/m4a": "audio/mp4", "audio/x-m4a": "audio/mp4",
    "application/x-zip-compressed": "application/zip",
    "application/msword": "application/x-ole", "application/vnd.ms-excel": "application/x-ole",
    "application/vnd.ms-powerpoint": "application/x-ole",
}  # fmt: skip
_AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac",
                  "ogg": "audio/ogg", "m4a": "audio/mp4", "opus": "audio/ogg"}  # fmt: skip
# Types whose bytes this module can recognise: a claim of one of them is checked.
_KNOWN = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff",
    "image/heic", "image/svg+xml", "application/pdf", "audio/wav", "audio/mpeg", "audio/ogg",
    "audio/flac", "audio/mp4", "video/mp4", "application/x-ole", "text/plain", "text/html",
}) | _ZIP_KINDS  # fmt: skip

_ARCHIVED_PROGRAM = re.compile(r"\.(?:exe|dll|scr|com|msi|bat|cmd|ps1|vbs|vbe|wsf|jar|apk|app/)$")
_SVG_ACTIVE = re.compile(rb"<script|\bon[a-z]+\s*=|javascript:", re.IGNORECASE)
_PDF_ACTIVE = re.compile(rb"/(?:JavaScript|JS|Launch)\b")
_PDF_STREAM = re.compile(rb"(?<!end)stream\r?\n(.*?)\r?\nendstream", re.DOTALL)
_PDF_TEXT_BLOCK = re.compile(rb"BT(.*?)ET", re.DOTALL)
_PDF_STRING = re.compile(rb"\(((?:\\.|[^\\()]){0,4096})\)", re.DOTALL)
_PDF_INFO = re.compile(
    rb"/(?:Title|Subject|Keywords|Author|Contents)\s*\(((?:\\.|[^\\()]){0,4096})\)"
)
_PDF_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"", b"f": b"", b"(": b"(", b")": b")",
                b"\\": b"\\"}  # fmt: skip
_XML_TAG = re.compile(r"<(/?)([^>]{0,2048})>")


def check_content_part(part: dict[str, Any]) -> list[Detection]:
    """Detections for one chat content part; [] for text parts and remote URLs."""
    claim = _claimed_payload(part)
    if claim is None:
        return []
    declared, payload = claim
    raw = _decode(payload) if isinstance(payload, str) else payload
    if raw is None:
        return [Detection("file.malformed", 0.7, "the data is not valid base64")]
    return check_file_bytes(raw, declared)


def check_file_bytes(raw: bytes, declared: str | None) -> list[Detection]:
    """Detections for a file's bytes and the media type claimed for them, if any."""
    if not raw:
        return [Detection("file.malformed", 0.7, "the file is empty")]
    kind, problem = identify(raw)
    found: list[Detection] = []
    if kind in _EXECUTABLES:
        found.append(Detection("file.executable", 1.0, f"the bytes are {kind}"))
    claimed = _ALIASES.get(declared, declared) if declared else None
    if claimed in _KNOWN and not _compatible(claimed, kind):
        found.append(Detection("file.mismatch", 0.9, f"declared {declared}, the bytes are {kind}"))
    if kind == "application/octet-stream":
        found.append(Detection("file.unknown_type", 0.6, f"no known type starts {raw[:8].hex()}"))
    if problem is not None:
        found.append(Detection("file.malformed", 0.7, f"{kind}: {problem}"))
    found.extend(_inside(raw, kind))
    return found


def identify(raw: bytes) -> tuple[str, str | None]:
    """The media type the bytes are, and what is wrong with their structure (or None)."""
    head = raw[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", _png_problem(raw)
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", None if b"\xff\xd9" in raw[-64:] else "no end-of-image marker"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif", None if raw.rstrip(b"\0").endswith(b";") else "no trailer"
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return _riff(raw)
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n\0")[:5] == b"%PDF-":
        return "application/pdf", None if b"%%EOF" in raw[-1024:] else "no %%EOF: cut short"
    if head.startswith(b"ID3") or _mpeg_frame(raw):
        return "audio/mpeg", None
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(raw)
    if head.startswith(b"\x7fELF"):
        return "application/x-elf", None
    if head.startswith(b"MZ") and _is_pe(raw):
        return "application/x-msdownload", None
    if head[:4] in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                    b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):  # fmt: skip
        return "application/x-mach-binary", None
    if head.startswith(b"\0asm"):
        return "application/wasm", None
    if head.startswith(b"#!"):
        return "text/x-script", None
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole", None
    if head.startswith((b"OggS",)):
        return "audio/ogg", None
    if head.startswith(b"fLaC"):
        return "audio/flac", None
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic", None
        return ("audio/mp4" if brand.startswith(b"M4A") else "video/mp4"), None
    if head.startswith((b"II*\0", b"MM\0*")):
        return "image/tiff", None
    if (
        head.startswith(b"BM")
        and len(raw) >= 26
        and struct.unpack_from("<I", raw, 2)[0] == len(raw)
    ):
        return "image/bmp", None
    text = _as_text(raw)
    if text is not None:
        start = text[:1024].lstrip().lower()
        if "<svg" in start:
            return "image/svg+xml", None
        if start.startswith(("<!doctype html", "<html")):
            return "text/html", None
        return "text/plain", None
    if head.startswith(b"MZ"):
        return "application/x-msdownload", None  # a DOS program, no PE header
    return "application/octet-stream", None


# What a part claims to carry: its declared type, and its data as base64 text to
# decode or as the bytes themselves.
_Claim = tuple[str | None, str | bytes]


def _claimed_payload(part: dict[str, Any]) -> _Claim | None:
    """What the part carries, or None when there is nothing here to check."""
    kind = part.get("type")
    if kind in ("image_url", "input_image"):
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return _data_url(url) if isinstance(url, str) else None
    if kind in ("file", "input_file"):
        file = part.get("file") if kind == "file" else part
        data = file.get("file_data") if isinstance(file, dict) else None
        if not isinstance(data, str):
            return None  # a file id: the upstream holds the file
        return _data_url(data) if data.startswith("data:") else (None, data)
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
            return None
        fmt = str(audio.get("format", "")).lower()
        return _AUDIO_FORMATS.get(fmt, f"audio/{fmt}" if fmt else None), audio["data"]
    if kind in ("image", "document"):
        source = part.get("source")
        if not isinstance(source, dict):
            return None
        media = source.get("media_type")
        declared = media if isinstance(media, str) else None
        data = source.get("data")
        if source.get("type") == "base64" and isinstance(data, str):
            return declared, data
        if source.get("type") == "text" and isinstance(data, str):
            return declared or "text/plain", data.encode("utf-8", "surrogatepass")
    return None


def _data_url(url: str) -> _Claim | None:
    if not url.startswith("data:"):
        return None  # http(s) and file ids are not fetched
    header, _, data = url.partition(",")
    params = header[5:].split(";")
    declared = params[0].strip().lower() or None
    if "base64" in (param.strip().lower() for param in params[1:]):
        return declared, data
    return declared, urllib.parse.unquote_to_bytes(data)


def _decode(data: str) -> bytes | None:
    compact = "".join(data.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.b64decode(compact, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            return None


def _compatible(claimed: str, kind: str) -> bool:
    if claimed == kind:
        return True
    if claimed in _TEXT_KINDS or claimed.startswith("text/"):
        return kind in _TEXT_KINDS
    if claimed == "application/zip":
        return kind in _ZIP_KINDS
    return claimed == "video/mp4" and kind == "audio/mp4"


def _png_problem(raw: bytes) -> str | None:
    if len(raw) < 33 or raw[8:16] != b"\0\0\0\rIHDR":
        return "no IHDR chunk first"
    width, height, depth, colour = struct.unpack_from(">IIBB", raw, 16)
    if width == 0 or height == 0 or depth not in (1, 2, 4, 8, 16) or colour not in (0, 2, 3, 4, 6):
        return "an impossible IHDR"
    if zlib.crc32(raw[12:29]) != struct.unpack_from(">I", raw, 29)[0]:
        return "the IHDR checksum is wrong"
    if not raw.endswith(b"IEND\xaeB`\x82"):
        return "no IEND chunk: cut short"
    return None


def _riff(raw: bytes) -> tuple[str, str | None]:
    kind = "image/webp" if raw[8:12] == b"WEBP" else "audio/wav"
    size = struct.unpack_from("<I", raw, 4)[0]
    if size not in (0, 0xFFFFFFFF) and size + 8 > len(raw):
        return kind, "the RIFF size runs past the end: cut short"
    if kind == "image/webp":
        return kind, None if raw[12:16] in (b"VP8 ", b"VP8L", b"VP8X") else "no VP8 chunk"
    at = 12
    while at + 8 <= len(raw):
        chunk, length = raw[at : at + 4], struct.unpack_from("<I", raw, at + 4)[0]
        if chunk == b"fmt ":
            return kind, None
        at += 8 + length + (length & 1)
    return kind, "no fmt chunk"


def _mpeg_frame(raw: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a layer, a usable bit rate."""
    return (
        len(raw) > 3
        and raw[0] == 0xFF
        and raw[1] & 0xE0 == 0xE0
        and (raw[1] >> 1) & 3 != 0
        and raw[2] >> 4 not in (0, 0xF)
    )


def _is_pe(raw: bytes) -> bool:
    if len(raw) < 0x40:
        return False
    offset = struct.unpack_from("<I", raw, 0x3C)[0]
    return raw[offset : offset + 4] == b"PE\0\0"


def _zip_kind(raw: bytes) -> tuple[str, str | None]:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = archive.namelist()
            mimetype = b""
            if "mimetype" in names:
                with archive.open("mimetype") as member:
                    mimetype = member.read(100)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError):
        return "application/zip", "the archive cannot be read"
    if "AndroidManifest.xml" in names and "classes.dex" in names:
        return "application/vnd.android.package-archive", None
    if "META-INF/MANIFEST.MF" in names and any(name.endswith(".class") for name in names):
        return "application/java-archive", None
    if "word/document.xml" in names:
        return "application/vnd.openxmlformats-officedocument.wordprocessingml.document", None
    if "xl/workbook.xml" in names:
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", None
    if "ppt/presentation.xml" in names:
        return "application/vnd.openxmlformats-officedocument.presentationml.presentation", None
    if mimetype.startswith(b"application/vnd.oasis.opendocument"):
        return "application/vnd.oasis.opendocument", None
    return "application/zip", None


def _as_text(raw: bytes) -> str | None:
    """The bytes as text if they are text: UTF-8 (or UTF-16 with a BOM), no NULs."""
    sample = raw[:TEXT_LIMIT]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return sample.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\0" in sample:
        return None
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(sample) - 4:  # not just a character cut at the limit
            return None
        text = sample[: error.start].decode("utf-8")
    printable = sum(1 for char in text[:4096] if char.isprintable() or char in "\n\r\t\f")
    return text if printable >= 0.95 * min(len(text), 4096) else None


def _inside(raw: bytes, kind: str) -> list[Detection]:
    """What the file holds: its text re-checked, programs and active content."""
    if kind in _TEXT_KINDS:
        found = _text_hits(_as_text(raw) or "", "text file")
        if kind == "image/svg+xml" and _SVG_ACTIVE.search(raw):
            found.append(Detection("file.active_content", 0.8, "an SVG with scripts"))
        return found
    if kind == "application/pdf":
        found = _text_hits(_pdf_text(raw), "PDF text")
        if _PDF_ACTIVE.search(raw):
            found.append(Detection("file.active_content", 0.7, "a PDF with JavaScript or launch"))
        return found
    if kind in _ZIP_KINDS:
        return _archive_hits(raw)
    return []


def _text_hits(text: str, where: str) -> list[Detection]:
    return [
        Detection(hit.rule, hit.score, f"in the {where}: {hit.detail}")
        for hit in check_injection(text[:TEXT_LIMIT])
    ]


def _pdf_text(raw: bytes) -> str:
    """Text shown by uncompressed content streams, and the document's metadata."""
    pieces = [_pdf_unescape(match.group(1)) for match in _PDF_INFO.finditer(raw)]
    budget = _PDF_STREAM_LIMIT
    for stream in _PDF_STREAM.finditer(raw):
        dictionary = raw[max(0, stream.start() - 512) : stream.start()]
        if b"/Filter" in dictionary[dictionary.rfind(b"<<") :]:
            continue  # compressed: not inflated here
        body = stream.group(1)[:budget]
        budget -= len(body)
        for block in _PDF_TEXT_BLOCK.finditer(body):
            pieces.extend(
                _pdf_unescape(text.group(1)) for text in _PDF_STRING.finditer(block.group(1))
            )
        if budget <= 0:
            break
    return " ".join(pieces)


def _pdf_unescape(literal: bytes) -> str:
    out = re.sub(
        rb"\\([0-7]{1,3}|.)",
        lambda m: bytes([int(m.group(1), 8) & 0xFF]) if m.group(1)[:1].isdigit()
        else _PDF_ESCAPES.get(m.group(1), m.group(1)),
        literal,
    )  # fmt: skip
    return out.decode("latin-1")


def _word_markup(tag: re.Match[str]) -> str:
    # Word splits text into runs anywhere, even inside a word: runs join, paragraphs break.
    return "\n" if tag.group(1) and tag.group(2).startswith("w:p") else ""


def _archive_hits(raw: bytes) -> list[Detection]:
    found: list[Detection] = []
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = archive.namelist()
            programs = [name for name in names if _ARCHIVED_PROGRAM.search(name.lower())]
            if programs:
                found.append(
                    Detection("file.executable", 0.9, f"the archive holds {excerpt(programs[0])}")
                )
            if any(name.lower().endswith("vbaproject.bin") for name in names):
                found.append(Detection("file.executable", 0.8, "the document carries macros"))
            if "word/document.xml" in names:
                with archive.open("word/document.xml") as member:
                    xml = member.read(_INFLATE_LIMIT).decode("utf-8", "replace")
                found.extend(_text_hits(_XML_TAG.sub(_word_markup, xml), "document"))
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, RuntimeError):
        return found  # already reported as malformed
    return found
