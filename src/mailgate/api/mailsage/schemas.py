"""MailSage ``/api/v1/smtp/configs`` request and response models (MailSage's field names)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.fields import EmailAddress, Hostname, RequiredText, StrictModel

Password = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Port = Annotated[int, Field(ge=1, le=65535)]


class ConfigCreate(StrictModel):
    name: RequiredText
    host: Hostname
    port: Port
    username: RequiredText
    password: Password
    use_tls: bool = True
    from_email: EmailAddress
    is_default: bool = False


class ConfigUpdate(StrictModel):
    """Same fields as a create, all optional; only the fields sent change (none is nullable)."""

    name: RequiredText | None = None
    host: Hostname | None = None
    port: Port | None = None
    username: RequiredText | None = None
    password: Password | None = None
    use_tls: bool | None = None
    from_email: EmailAddress | None = None
    is_default: bool | None = None


class TestRequest(StrictModel):
    __test__ = False  # not a pytest test class, despite the name

    recipient: EmailAddress


class Config(BaseModel):
    id: int
    name: str
    host: str
    port: int
    username: str | None
    from_email: str | None
    is_default: bool
    use_tls: bool
    created_at: str
    updated_at: str


class ListMeta(BaseModel):
    current_page: int
    total_pages: int
    total_items: int


class ConfigList(BaseModel):
    data: list[Config]
    meta: ListMeta


class Message(BaseModel):
    message: str


class TestSent(BaseModel):
    __test__ = False

    message: str
    delivery_id: str


class ErrorDetail(BaseModel):
    field: str
    message: str


class Error(BaseModel):
    error: str
    code: str
    message: str
    retry_after: int | None = None
    details: list[ErrorDetail] | None = None
