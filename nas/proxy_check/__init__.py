"""nas-proxy-check: does the proxy rank architectures as a longer training does?"""
