from doorstep.infra.migrations import run_env
from doorstep.orders.adapters.tables import metadata

run_env(metadata)
