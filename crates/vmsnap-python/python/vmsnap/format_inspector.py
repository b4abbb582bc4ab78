"""OpenStack's ``oslo_utils.imageutils.format_inspector`` (oslo.utils 10.x), answered by vmsnap.

A pipeline switches by changing one import::

    from vmsnap import format_inspector   # was: from oslo_utils.imageutils import format_inspector

    inspector = format_inspector.detect_file_format(path)
    str(inspector), inspector.virtual_size, inspector.actual_size
    inspector.safety_check()     # raises SafetyCheckFailed / ImageFormatError

The call shapes are oslo.utils 10.x's: :func:`detect_file_format`, :func:`get_inspector`,
:data:`ALL_FORMATS`, :class:`InspectWrapper`, and the exceptions :class:`ImageFormatError`,
:class:`SafetyViolation` and :class:`SafetyCheckFailed` (with ``.failures``, a dict from
check name to :class:`SafetyViolation`). The answers are ``vmsnap check``'s: the rule names
in ``failures`` are vmsnap's rule ids (``backing_file``, ``data_file``,
``unknown_features``, ``mbr``, ``multiple_formats`` … — OpenStack's names where a rule
corresponds). Where vmsnap deliberately answers differently from oslo.utils, see
``docs/inspection.md`` and ``DIFFERENCES`` below.

Differences in behaviour, beyond answers:

* A file is inspected at random offsets (``detect_file_format``, ``from_file``); a stream
  (``InspectWrapper``) is inspected when it ends, with bounded memory (the first 4 MiB, the
  last 1 MiB and the regions a format needs): there is no early abort on an
  ``expected_format`` mismatch while reading. Call ``close()`` and look at ``.format``.
* ``params`` (a LUKS passphrase) and ``tracing`` are accepted and ignored: vmsnap takes no
  passphrase (its ``luks_passphrase`` rule says so), and logs nothing.
* Formats oslo.utils does not know (``parallels``, ``qcow``, ``vmware``, ``gzip`` …) are
  reported under vmsnap's name (``str(inspector)``) instead of ``raw``.
"""

from __future__ import annotations

import os
from typing import IO, Any, Iterator, Optional

from . import Inspector as _Inspector
from . import check as _check

__all__ = [
    "ALL_FORMATS",
    "FileInspector",
    "ImageFormatError",
    "InspectWrapper",
    "SafetyCheckFailed",
    "SafetyViolation",
    "detect_file_format",
    "get_inspector",
]

# vmsnap's `check` names differ from oslo.utils' for none of oslo's formats: both say
# `vhd` (qemu's `vpc`), `raw`, `iso`, `gpt`, `luks`.


class ImageFormatError(Exception):
    """An unrecoverable image format error that aborts the process."""


class SafetyViolation(Exception):
    """Indicates a failure of a single safety violation."""


class SafetyCheckFailed(Exception):
    """Indicates that one or more of a series of safety checks failed."""

    def __init__(self, failures: dict[str, Any]) -> None:
        super().__init__("Safety checks failed: %s" % ",".join(failures.keys()))
        self.failures = failures


class FileInspector:
    """The result of inspecting an image as one format (``NAME``).

    Fed a stream with :meth:`eat_chunk` and :meth:`finish`, or made by
    :meth:`from_file` / :func:`detect_file_format`. ``str()`` is the format name.
    """

    NAME = ""

    def __init__(self, tracing: bool = False, params: Optional[dict[str, str]] = None) -> None:
        self._tracing = tracing
        self._params = params or {}
        self._inspector: Optional[_Inspector] = _Inspector()
        self._report: Optional[dict] = None
        self._total = 0

    @classmethod
    def _of_report(cls, report: dict, total: int) -> "FileInspector":
        insp = cls()
        insp._inspector = None
        insp._report = report
        insp._total = total
        return insp

    # -- streaming -------------------------------------------------------------------
    def eat_chunk(self, chunk: bytes) -> None:
        """Feeds the next chunk of the stream."""
        if self._inspector is None:
            raise RuntimeError("Inspector has been marked finished, no more data processing allowed")
        self._inspector.feed(chunk)
        self._total += len(chunk)

    def finish(self) -> None:
        """The stream has ended: inspect what was kept."""
        if self._inspector is not None:
            self._report = self._inspector.finish()
            self._inspector = None

    # -- answers ---------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Whether the inspection is done (after :meth:`finish`)."""
        return self._report is not None

    @property
    def format_match(self) -> bool:
        """Whether the content is this inspector's format."""
        if self._report is None:
            return False
        if self.NAME == "raw":
            return True
        return self._report.get("format") == self.NAME or self.NAME in (
            self._report.get("detected") or []
        )

    @property
    def virtual_size(self) -> int:
        """The disk's virtual size, or zero if unknown."""
        if self._report is None or not self.format_match:
            return 0
        if self.NAME == "raw" and self._report.get("format") != "raw":
            return self._total
        return int(self._report.get("virtual_size") or 0)

    @property
    def actual_size(self) -> int:
        """The bytes inspected (the file's size once all of it was read)."""
        return self._total

    @property
    def context_info(self) -> dict[str, int]:
        """Bytes held in memory for the inspection."""
        return {"retained": self._inspector.retained if self._inspector else 0}

    @property
    def report(self) -> Optional[dict]:
        """vmsnap's whole ``check --json`` object (not in oslo.utils)."""
        return self._report

    def __str__(self) -> str:
        return self.NAME

    def __repr__(self) -> str:
        return f"<vmsnap.format_inspector {self.NAME or '?'} inspector>"

    @classmethod
    def from_file(cls, filename: str) -> "FileInspector":
        """Inspects a file as this format.

        :raises ImageFormatError: if the file is not in this format.
        """
        report = _check(os.fspath(filename))
        insp = cls._of_report(report, os.stat(filename).st_size)
        if not insp.format_match:
            raise ImageFormatError("File is not in requested format")
        return insp

    def safety_check(self) -> None:
        """Runs every check of vmsnap's ``check`` on the image.

        :raises ImageFormatError: if safety cannot be guaranteed (incomplete, not this
            format, or the image could not be inspected).
        :raises SafetyCheckFailed: if one or more checks failed.
        """
        if self._report is None:
            raise ImageFormatError("Incomplete file cannot be safety checked")
        if not self.format_match:
            raise ImageFormatError(
                "Unable to safety check format %s because content does not match" % self
            )
        report = self._report
        if self.NAME == "raw" and report.get("format") != "raw":
            # Read as raw because the caller allowed nothing else: no rule applies.
            return
        if report.get("verdict") == "error":
            err = report.get("error") or {}
            raise ImageFormatError(err.get("message") or "could not inspect the image")
        failures = {}
        for rule in report.get("rules", []):
            if rule.get("verdict") == "fail":
                exc = SafetyViolation(rule.get("message") or rule["rule"])
                failures[rule["rule"]] = exc
        if failures:
            raise SafetyCheckFailed(failures)


def _inspector_class(name: str, class_name: str) -> type:
    return type(class_name, (FileInspector,), {"NAME": name, "__module__": __name__})


RawFileInspector = _inspector_class("raw", "RawFileInspector")
QcowInspector = _inspector_class("qcow2", "QcowInspector")
VHDInspector = _inspector_class("vhd", "VHDInspector")
VHDXInspector = _inspector_class("vhdx", "VHDXInspector")
VMDKInspector = _inspector_class("vmdk", "VMDKInspector")
VDIInspector = _inspector_class("vdi", "VDIInspector")
QEDInspector = _inspector_class("qed", "QEDInspector")
ISOInspector = _inspector_class("iso", "ISOInspector")
GPTInspector = _inspector_class("gpt", "GPTInspector")
LUKSInspector = _inspector_class("luks", "LUKSInspector")

#: Format name -> inspector class, as in oslo.utils.
ALL_FORMATS: dict[str, type] = {
    "raw": RawFileInspector,
    "qcow2": QcowInspector,
    "vhd": VHDInspector,
    "vhdx": VHDXInspector,
    "vmdk": VMDKInspector,
    "vdi": VDIInspector,
    "qed": QEDInspector,
    "iso": ISOInspector,
    "gpt": GPTInspector,
    "luks": LUKSInspector,
}

_OTHER: dict[str, type] = {}


def _class_for(name: str) -> type:
    """The inspector class for a format vmsnap found, oslo's or one of vmsnap's own."""
    if name in ALL_FORMATS:
        return ALL_FORMATS[name]
    if name not in _OTHER:
        _OTHER[name] = _inspector_class(name, f"{name.capitalize()}Inspector")
    return _OTHER[name]


def get_inspector(format_name: str) -> Optional[type]:
    """The inspector class for ``format_name`` (``raw``, ``qcow2`` …), or None."""
    return ALL_FORMATS.get(format_name)


def _multiple(report: dict) -> Optional[list]:
    for rule in report.get("rules", []):
        if rule.get("rule") == "multiple_formats" and rule.get("verdict") == "fail":
            return list(report.get("detected") or [])
    return None


def _decide(report: dict, total: int, allowed: Optional[list]) -> FileInspector:
    """The inspector for a finished report, as oslo's ``InspectWrapper.format`` decides."""
    multiple = _multiple(report)
    if multiple is not None:
        raise ImageFormatError("Multiple formats detected: {}".format(",".join(multiple)))
    name = report.get("format") or "raw"
    if allowed and name not in allowed:
        if "raw" in allowed:
            return RawFileInspector._of_report(report, total)
        raise ImageFormatError("Content does not match any allowed format")
    return _class_for(name)._of_report(report, total)


def detect_file_format(
    filename: str, tracing: bool = False, params: Optional[dict[str, str]] = None
) -> Optional[FileInspector]:
    """Detects the format of a file (read at random offsets, never opening another file).

    :returns: an inspector for the format found (``str()`` is its name).
    :raises ImageFormatError: if more than one format is detected.
    """
    report = _check(os.fspath(filename))
    return _decide(report, os.stat(filename).st_size, None)


class InspectWrapper:
    """A file-like object that passes another through and detects its format.

    Read it to its end (``read()`` or iteration), ``close()`` it, then ``.format`` is the
    inspector of the format found (None before the stream has ended).
    """

    def __init__(
        self,
        source: IO[bytes],
        expected_format: Optional[str] = None,
        allowed_formats: Optional[list[str]] = None,
        tracing: bool = False,
        params: Optional[dict[str, str]] = None,
    ) -> None:
        self._source = source
        self._expected_format = expected_format
        self._allowed = list(allowed_formats) if allowed_formats else None
        self._inspector: Optional[_Inspector] = _Inspector()
        self._report: Optional[dict] = None
        self._total = 0
        self._finished = False

    def _process_chunk(self, chunk: bytes) -> None:
        if self._inspector is not None and chunk:
            self._inspector.feed(chunk)
            self._total += len(chunk)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self._source)  # type: ignore[call-overload]
        except StopIteration:
            self._finish()
            raise
        self._process_chunk(chunk)
        return chunk

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        self._process_chunk(chunk)
        return chunk

    def _finish(self) -> None:
        if self._inspector is not None:
            self._report = self._inspector.finish()
            self._inspector = None
        self._finished = True

    def close(self) -> None:
        if hasattr(self._source, "close"):
            self._source.close()
        self._finish()

    @property
    def formats(self) -> Optional[list[FileInspector]]:
        """The formats found (more than one only for an allowed combination); None before
        the stream has ended."""
        if self._report is None:
            return None
        detected = _multiple(self._report)
        if detected is not None:
            return [_class_for(n)._of_report(self._report, self._total) for n in detected]
        return [_decide(self._report, self._total, self._allowed)]

    @property
    def format(self) -> Optional[FileInspector]:
        """The format found; None before the stream has ended.

        :raises ImageFormatError: more than one format, or none allowed.
        """
        if self._report is None:
            return None
        return _decide(self._report, self._total, self._allowed)
