# The tutorial's Simple Server, as a student writes it, serving one client on the port given:
# python3 simple_server.py PORT
import socket
import sys

port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', port))
s.listen(5)
print('listening', flush=True)
con, addr = s.accept()
print('Connecting with', addr, flush=True)
con.send(b'Connection is successful')
con.close()
s.close()
