# Fills a public-inbox v2 inbox's first epoch from an mboxrd on stdin,
# through public-inbox's own library (public-inbox-mda takes one message
# at a time and filters HTML); public-inbox-index then builds its
# indexes. For the side-by-side web figures (internal/bench/peers.go).
use strict;
use PublicInbox::Git;
use PublicInbox::Import;
use PublicInbox::MboxReader;
my $dir = shift;
my $im = PublicInbox::Import->new(PublicInbox::Git->new("$dir/git/0.git"), 'bench', 'bench@lists.example.org');
$im->{path_type} = 'v2';
$im->{lock_path} = undef;
binmode STDIN;
PublicInbox::MboxReader->reads('mboxrd')->(undef, \*STDIN, sub { $im->add($_[0]) });
$im->done;
