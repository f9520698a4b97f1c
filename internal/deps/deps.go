package deps
import (
 _ "github.com/gorilla/websocket"
 _ "github.com/dgraph-io/badger/v4"
 _ "github.com/vmihailenco/msgpack/v5"
 _ "golang.org/x/crypto/chacha20poly1305"
 _ "golang.org/x/crypto/nacl/box"
 _ "github.com/chromedp/chromedp"
)
