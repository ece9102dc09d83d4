"""SMTP2GO ``/v3`` request and response models (SMTP2GO's field names)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, StringConstraints

from mailgate.api.fields import StrictModel

ApiKey = Annotated[str, StringConstraints(max_length=255)]


class Smtp2goRequest(StrictModel):
    """Every ``/v3`` body may carry the key itself (the official clients put it there)."""

    api_key: ApiKey | None = None


class ViewPermissionsRequest(Smtp2goRequest):
    """``POST /api_keys/permissions`` takes no parameters."""


class FieldValidationError(BaseModel):
    fieldname: str
    message: str


class FieldValidationErrors(FieldValidationError):
    """SMTP2GO names one field (``fieldname``, ``message``); ``errors`` lists every one."""

    errors: list[FieldValidationError]


class ErrorData(BaseModel):
    error: str
    error_code: str
    field_validation_errors: FieldValidationErrors | None = None


class ErrorEnvelope(BaseModel):
    request_id: str
    data: ErrorData


class PermissionsEnvelope(BaseModel):
    """``data`` lists the endpoints this key may call, as SMTP2GO does."""

    request_id: str
    data: list[str]
