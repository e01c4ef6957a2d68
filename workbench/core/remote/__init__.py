"""Sessions reached from elsewhere: the attach protocol, its server and client, the remote engine,
detached sessions. The only wing besides `engine` that may import `engine`.
"""
