"""The runner's failures, each carrying the exit code and failure class it ends with.

The operator tells outcomes apart only by exit code and `errorClass` (API.md, runner protocol), so
every step raises one of these instead of a bare exception: the CLI maps them to the exit code and
the termination message in one place. Nothing here does I/O.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """The runner's exit codes: the one definition (the operator's podFailurePolicy and outcome
    classification import these rather than repeating the numbers)."""

    PASSED = 0
    TESTS_FAILED = 1
    INVALID = 2
    INFRASTRUCTURE = 3


class ErrorClass(StrEnum):
    """Every failure class of an attempt (API.md, failure classes): the one definition.

    The runner reports the first four in the termination message's `errorClass`; the last two
    only the operator can see (the pod was evicted, or the Job ran past its deadline), so the
    runner never writes them. The operator imports this enum instead of repeating the strings.
    """

    TEST_FAILURE = "TestFailure"
    INVALID_SPEC = "InvalidSpec"
    INFRASTRUCTURE = "InfrastructureError"
    BROWSER_CRASH = "BrowserCrash"
    POD_EVICTED = "PodEvicted"
    TIMEOUT = "Timeout"


# What the runner itself may report in `errorClass`.
RUNNER_REPORTED = frozenset(
    {ErrorClass.TEST_FAILURE, ErrorClass.INVALID_SPEC, ErrorClass.INFRASTRUCTURE, ErrorClass.BROWSER_CRASH}
)
# What `spec.retries.retryOn` may name (Timeout and InvalidSpec are never retried).
RETRYABLE = (ErrorClass.INFRASTRUCTURE, ErrorClass.POD_EVICTED, ErrorClass.BROWSER_CRASH, ErrorClass.TEST_FAILURE)
# Retried when an execution names no retryOn.
DEFAULT_RETRY_ON = (ErrorClass.INFRASTRUCTURE, ErrorClass.POD_EVICTED, ErrorClass.BROWSER_CRASH)


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
