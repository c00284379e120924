from doorstep.dispatch.adapters.tables import metadata
from doorstep.infra.migrations import run_env

run_env(metadata)
