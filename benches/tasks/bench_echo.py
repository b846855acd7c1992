"""rtl bench: returns its input, to time a call's round trip."""

from rtl_task import serve

serve(lambda table: table)
