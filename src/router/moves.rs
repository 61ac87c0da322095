//! A host name (and path) moved from one instance to another in the file
//! being applied. The instance that takes it over is applied first, while
//! the one giving it up still routes it: the router serves it from one or
//! the other throughout, and an ACME certificate it holds for the name is
//! kept (Traefik reuses the stored one). The other order would leave the
//! name unrouted between the two applies, or refuse the new owner.

use std::path::Path;

use crate::model::Instance;

/// One name that an instance's routes file on the host claims and that
/// the file now gives to another instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// `host/path`, as routes files claim it.
    pub claim: String,
    /// The instance taking it over and the one giving it up, `APP/INSTANCE`.
    pub to: String,
    pub from: String,
}

/// The moves among `declared` (the file's instances that this host runs,
/// compiled): a claim of one of them that another's routes file on the
/// host makes, where the file no longer gives it to that other.
pub fn find(root: Option<&Path>, declared: &[Instance]) -> Vec<Move> {
    let mut moves = Vec::new();
    for taker in declared {
        let Some(router) = &taker.router else {
            continue;
        };
        for (claim, file) in super::claimed_elsewhere(root, router, taker) {
            let holder = (declared.iter())
                .find(|d| crate::model::route::Router::dynamic_file_name(&d.prefix()) == file);
            let Some(holder) = holder else {
                continue;
            };
            if super::claims(holder).contains(&claim) {
                // Claimed by both in the file: `validate` refuses that.
                continue;
            }
            moves.push(Move {
                claim,
                to: format!("{}/{}", taker.app, taker.instance),
                from: format!("{}/{}", holder.app, holder.instance),
            });
        }
    }
    moves
}
