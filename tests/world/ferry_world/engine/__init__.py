"""The world's engine: everything that is not an AWS rule.

- server.py        moto in server mode + rules + the pieces below (`python -m ferry_world.server`)
- faults.py        the WSGI front door: call recording, faults on demand, /ferry-world/ control API
- clock.py         the one simulated clock (FERRY_WORLD_TIME_SCALE)
- config.py        world settings the rules read (/ferry-world/config)
- sfn.py           Step Functions on the simulated clock (Wait, Retry, nested executions)
- lambda_runner.py runs the real Rust Lambda binaries behind a local Runtime API
- deploy.py        deploys template.yaml into the world (`python -m ferry_world.deploy`)

The AWS rules live in ferry_world/rules/ and may use clock and config; nothing here
imports a rule module except server.py, which installs them all.
"""
