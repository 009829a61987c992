# The tutorial's Simple Client, as a student writes it, with the server's address from the
# command line: python3 simple_client.py HOST PORT [--reset]
# With --reset it closes with SO_LINGER 0 instead, so the server sees a reset connection.
import socket
import struct
import sys

host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect((host, port))
if '--reset' in sys.argv:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()
    sys.exit(0)
print(s.recv(1024))
s.close()
