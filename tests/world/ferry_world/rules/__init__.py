"""The project's AWS rules on top of moto. Each rule is a named function that cites the
AWS document it follows, and is installed by patching moto before the server starts."""


def install_all() -> None:
    from . import migration, sharing, trust

    migration.install()
    sharing.install()
    trust.install()
