"""Elastic IP addresses (migration rule 10): AssociateAddress with AllowReassociation
moves an address between instances as EC2 does.
"""
from __future__ import annotations

from typing import Any


def elastic_ip_moves_with_allow_reassociation() -> None:
    """API Reference "AssociateAddress": with AllowReassociation an Elastic IP already
    associated with another instance moves to the new one; EC2 User Guide "Elastic IP
    addresses": the instance it left keeps no public IP (or gets a new auto-assigned one
    if its interface auto-assigns), and DescribeAddresses shows the new InstanceId."""
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend

    original = ElasticAddressBackend.associate_address

    def associate_address(self: Any, instance: Any = None, eni: Any = None, address: str | None = None,
                          allocation_id: str | None = None, reassociate: bool = False) -> Any:
        eips = self.address_by_ip([address]) if address else (
            self.address_by_allocation([allocation_id]) if allocation_id else [])
        old_eni = eips[0].eni if eips else None
        eip = original(self, instance=instance, eni=eni, address=address,
                       allocation_id=allocation_id, reassociate=reassociate)
        if old_eni is not None and old_eni is not eip.eni:
            old_eni.public_ip = None
            if old_eni.instance is not None and old_eni.instance.state == "running":
                old_eni.check_auto_public_ip()
        return eip

    ElasticAddressBackend.associate_address = associate_address
