from doorstep.infra.migrations import run_env
from doorstep.integrations.adapters.tables import metadata

run_env(metadata)
