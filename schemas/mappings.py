"""A customer's links to its PSA company and documentation organisation."""

from pydantic import Field

from schemas.base import ContractModel, ShortText
from schemas.enums import DocumentationProvider, PsaProvider


class PsaMapping(ContractModel):
    """The PSA company (ConnectWise, Autotask, Halo) a customer is mapped to."""

    provider: PsaProvider
    company_id: ShortText = Field(description="The company's id in the PSA.")


class DocumentationMapping(ContractModel):
    """The documentation organisation (IT Glue, Hudu) a customer is mapped to."""

    provider: DocumentationProvider
    organization_id: ShortText = Field(description="The organisation's id in the tool.")
