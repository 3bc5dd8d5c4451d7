"""sessiontally: self-hosted session analytics with a Braze-compatible export API."""

__version__ = "0.1.0"
