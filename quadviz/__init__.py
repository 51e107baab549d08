"""quadviz: online SGD and the exact population flow of quadratic networks."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
