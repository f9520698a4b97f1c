package keyring

// wordList is the 256 words of a recovery phrase, one byte each, in byte
// order. The words are common, short and concrete. No two share their
// first four letters, none is a prefix of another, and no two differ in a
// single letter, so a slip of the pen rarely turns one word into another.
// The checksum catches the slips that do.
const wordList = `
able acorn actor alarm alley amber angle apple
april arch arrow atlas autumn axis baby badge
baker banjo barn basket beard bench berry bird
blue boat body book bottle bread brick bridge
brush butter cabin camel candle canoe castle cave
chair cheese cherry chess circle city cliff clock
cloud coffee comet cookie copper coral cotton crane
crown daisy dance desert dinner doctor door dragon
drum duck dune eagle earth echo elbow engine
eraser fabric falcon family farm fence field finger
fire flag flute forest fox frog fruit galaxy
garden garlic gate glass globe gold grape guitar
hammer helmet hero hill hockey honey hunter ink
island ivory jacket jaguar jam jeans jelly juice
jungle kayak kettle key king kite kitten koala
ladder lake lamp laptop lemon lens letter lily
lion lizard lotus lunch magnet mango maple marble
meadow melon metal milk mirror monkey moon motor
mouse museum music napkin needle nest night noodle
north nurse oak ocean olive onion opera orange
orbit organ oven owl oxygen palace panda paper
parrot pasta peach pearl pebble pencil pepper piano
pillow pilot pizza planet plum pocket pond potato
puppy purple puzzle queen quiz rabbit radio rain
ranch raven ribbon rice river robin rose ruby
ruler salad salmon sand scarf seal sheep shell
shoe silver skate sky snake soap sofa spider
spoon star stone storm sugar summer sun swan
taco tail teapot tent ticket tiger toast tomato
tooth torch tower toy tuna turtle uncle van
velvet violin wagon walnut whale wheat window winter
wolf wood yacht yard yellow zebra zipper zone`
