"""Instance types offered per Availability Zone (migration rule 8): the world setting
`instanceTypeOfferings` {az: [types]} replaces moto's list for the AZs it names, in
DescribeInstanceTypeOfferings and in RunInstances (run_instances.py refuses a type the
subnet's AZ does not offer).
"""
from __future__ import annotations

from typing import Any

from ..engine import config


def offered(backend: Any, az: str, instance_type: str) -> bool:
    configured = (config.get("instanceTypeOfferings") or {}).get(az)
    if configured is not None:
        return instance_type in configured
    return True  # AZs not configured offer every type moto knows


def instance_type_offerings_per_az() -> None:
    """API Reference "DescribeInstanceTypeOfferings" (LocationType availability-zone,
    filters `location` and `instance-type`) and EC2 User Guide "Troubleshoot Amazon EC2
    instance launch issues" (Unsupported: "Your requested instance type (X) is not
    supported in your requested Availability Zone (Y)..."). The world setting
    `instanceTypeOfferings` {az: [types]} replaces moto's list for the AZs it names."""
    from moto.ec2.models.instance_types import InstanceTypeOfferingBackend

    original = InstanceTypeOfferingBackend.describe_instance_type_offerings

    def describe_instance_type_offerings(self: Any, location_type: str | None = None,
                                         filters: dict[str, Any] | None = None) -> list[Any]:
        location_type = location_type or "region"
        configured = {
            az: types for az, types in (config.get("instanceTypeOfferings") or {}).items()
            if self.get_zone_by_name(az) is not None
        }
        if not configured or location_type == "region":
            result = original(self, location_type, filters)
            if configured and location_type == "region":
                have = {o["InstanceType"] for o in result}
                extra = sorted({t for types in configured.values() for t in types} - have)
                for t in extra:
                    o = {"InstanceType": t, "LocationType": "region", "Location": self.region_name}
                    if self.matches_filters(o, filters or {}, location_type):
                        result.append(o)
            return result
        zone_ids = {z.name: z.zone_id for z in self.describe_availability_zones()}
        names = {v: k for k, v in zone_ids.items()}
        stock = original(self, location_type, filters)

        def az_of(o: dict[str, Any]) -> str:
            loc = o["Location"]
            return names.get(loc, loc) if location_type == "availability-zone-id" else loc

        result = [o for o in stock if az_of(o) not in configured]
        for az, types in sorted(configured.items()):
            for t in types:
                location = zone_ids.get(az, az) if location_type == "availability-zone-id" else az
                o = {"InstanceType": t, "LocationType": location_type, "Location": location}
                if self.matches_filters(o, filters or {}, location_type):
                    result.append(o)
        return result

    InstanceTypeOfferingBackend.describe_instance_type_offerings = describe_instance_type_offerings
