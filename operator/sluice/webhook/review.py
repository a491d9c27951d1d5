"""The wire shape of `admission.k8s.io/v1` AdmissionReview: what the API server sends the webhook
and what it expects back. Only the fields the webhook reads or writes; it never decides."""
from __future__ import annotations

from pydantic import Field

from ..api.common import WireModel


class UserInfo(WireModel):
    username: str = ""
    groups: list[str] = Field(default_factory=list)


class AdmissionRequest(WireModel):
    uid: str
    operation: str = ""  # CREATE, UPDATE, DELETE, CONNECT
    namespace: str = ""
    name: str = ""
    user_info: UserInfo = Field(default_factory=UserInfo)
    object: dict | None = None
    old_object: dict | None = None
    dry_run: bool | None = False


class AdmissionReview(WireModel):
    api_version: str = "admission.k8s.io/v1"
    kind: str = "AdmissionReview"
    request: AdmissionRequest


def review_response(api_version: str, uid: str, allowed: bool, code: int = 200, reason: str = "",
                    message: str = "") -> dict:
    """The AdmissionReview the API server expects back; a denial carries its HTTP code and reason
    (kubectl prints `Error from server (<reason>): ... denied the request: <message>`)."""
    response: dict = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code, "reason": reason, "message": message}
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}
