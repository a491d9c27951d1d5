"""The runner's failures, each carrying the exit code and failure class it ends with.

The operator tells outcomes apart only by exit code and `errorClass` (API.md, runner protocol), so
every step raises one of these instead of a bare exception: the CLI maps them to the exit code and
the termination message in one place. Nothing here does I/O.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    PASSED = 0
    TESTS_FAILED = 1
    INVALID = 2
    INFRASTRUCTURE = 3


class ErrorClass(StrEnum):
    """Values of the termination message's `errorClass` (DESIGN.md, failure classes)."""

    TEST_FAILURE = "TestFailure"
    INVALID_SPEC = "InvalidSpec"
    INFRASTRUCTURE = "InfrastructureError"
    BROWSER_CRASH = "BrowserCrash"


class RunnerError(Exception):
    """A failure that ends the run with a given exit code and class."""

    exit_code: ExitCode = ExitCode.INFRASTRUCTURE
    error_class: ErrorClass = ErrorClass.INFRASTRUCTURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(RunnerError):
    """Settings or arguments are invalid: never retried."""

    exit_code = ExitCode.INVALID
    error_class = ErrorClass.INVALID_SPEC


class SourceError(RunnerError):
    """The test source is missing, empty, unreadable or not a suite: never retried."""

    exit_code = ExitCode.INVALID
    error_class = ErrorClass.INVALID_SPEC


class InfrastructureError(RunnerError):
    """Network, S3 or process trouble that a retry may cure."""


class UploadError(InfrastructureError):
    """Artifacts could not be uploaded even after retries."""
