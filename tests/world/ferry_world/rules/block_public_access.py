"""Image block public access (sharing rule 7; EC2 UG "Block public access to your AMIs"):
the per-account, per-Region state and the Get/Enable/DisableImageBlockPublicAccess calls
moto lacks. images.py refuses to make an AMI public while it is on.
"""
from __future__ import annotations

from ..engine import config
from .errors import ec2_error


def image_block_public_access_state(backend) -> str:
    """Rule 7. EC2 UG "Block public access to your AMIs": per account and Region,
    `block-new-sharing` or `unblocked`; on by default for new accounts (world setting
    imageBlockPublicAccessDefault). Changes apply at once (AWS: up to 10 minutes)."""
    state = getattr(backend, "ferry_image_bpa", None)
    if state is None:
        state = config.get("imageBlockPublicAccessDefault")
    return state


def get_image_block_public_access_state(self):
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    return ActionResult(
        {"ImageBlockPublicAccessState": image_block_public_access_state(self.ec2_backend), "ManagedBy": "account"}
    )


def enable_image_block_public_access(self):
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    state = self._get_param("ImageBlockPublicAccessState")
    if state != "block-new-sharing":
        raise ec2_error(
            "InvalidParameterValue",
            f"Value ({state}) for parameter ImageBlockPublicAccessState is invalid. Expected: 'block-new-sharing'.",
        )
    self.ec2_backend.ferry_image_bpa = "block-new-sharing"
    return ActionResult({"ImageBlockPublicAccessState": "block-new-sharing"})


def disable_image_block_public_access(self):
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    self.ec2_backend.ferry_image_bpa = "unblocked"
    return ActionResult({"ImageBlockPublicAccessState": "unblocked"})


def image_block_public_access() -> None:
    """Rule 7: the EC2 actions above."""
    from moto.ec2.responses import EC2Response

    EC2Response.get_image_block_public_access_state = get_image_block_public_access_state
    EC2Response.enable_image_block_public_access = enable_image_block_public_access
    EC2Response.disable_image_block_public_access = disable_image_block_public_access
