"""The SN72 wire protocol, field for field as the subnet's validators define it.

The axon routes by class NAME, so these names must never change.
"""

import functools

import bittensor as bt
import pydantic


@functools.cache
def _required_fields(synapse_class: type[bt.Synapse]) -> tuple[str, ...]:
    return tuple(synapse_class.model_json_schema().get("required", []))


class ImageSynapse(bt.Synapse):
    testnet_label: int = -1  # set by validators on testnet only: the true label, for miner self-eval

    image: str = pydantic.Field(title="Image", description="A base64 encoded image", default="", frozen=False)

    prediction: float = pydantic.Field(
        title="Prediction",
        description="Probability that the image shows roadwork",
        default=-1.0,
        frozen=False,
    )

    def deserialize(self) -> float:
        return self.prediction

    def get_required_fields(self) -> list[str]:
        # bittensor rebuilds this from the pydantic JSON schema in every to_headers(), i.e. for every
        # answer the axon sends (tens of ms of CPU); it is a constant of the class.
        return list(_required_fields(type(self)))


class ExtendedImageSynapse(ImageSynapse):
    """The organic-evaluation synapse (unmerged upstream branch update-organic-eval)."""

    model_url: str = ""
    explanation: str = pydantic.Field(
        title="Explanation",
        description="Textual explanation of visual indicators for roadwork detection. "
        "Required if prediction > 0.5.",
        default="",
        frozen=False,
    )
