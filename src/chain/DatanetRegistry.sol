// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title DatanetRegistry
 * @notice The on-chain side of a datanet (DESIGN §4 flows 4, 6, 7): validator stakes, anchored
 * versions (checked against the active set's precommit certificate), funding and claims
 * of attributed rewards, and slashing of equivocating validators.
 *
 * Signatures are EIP-712 under the node's domain {name "datanet", version "1", chainId,
 * verifyingContract = this, salt = datanet id}; OpenZeppelin's EIP712 base has no salt, so
 * the domain separator is computed per datanet here.
 *
 * A datanet is its manifest: `createDatanet` takes the manifest's dag-cbor bytes, keys the datanet
 * by their sha2-256 (the manifest CID's digest, the node's datanet id) and reads the genesis set
 * and anchor interval from them (ManifestReader below), so nobody can register a manifest's id
 * with another set or interval (issue 12 item 4).
 *
 * Versions are anchored at multiples of the datanet's anchorInterval only (fixed at creation):
 * validator-set changes (joins, leaves) take effect right after the next committed version,
 * so the set that decides heights A+1 .. A+anchorInterval is the set right after the anchor of
 * height A, whoever submits which certificate (src/chain/registry-state.ts setForHeight).
 *
 * Gas layout. The active set is held as packed members, `uint256(uint160(address)) << 96 | stake`
 * (stakes fit 96 bits: 7.9e10 ether), and as one hash: keccak256 over those members sorted
 * ascending (that is, by address), 32 bytes each. `commitVersion` takes the set in calldata,
 * checks it against the hash (one storage read for the whole set) and each signature against
 * the member at the index it names, so no storage is read per signer. The hash is recomputed
 * from storage only when the set changes (a committed version applying joins or leaves, a slash).
 * Amounts are held in 96 bits (all the ether there is fits 27 bits over that), so the anchored
 * head and the pool totals share a slot.
 *
 * Bounds. A commit applies at most MAX_SET_CHANGES joins and leaves (joins first, in request
 * order; the rest wait for the next anchors), so no number of pending requests can push it
 * past a block's gas. A slash burns the stake at once and takes the validator out of the set
 * at the next anchor, like a leave: the certificates of the heights already decided (which
 * count its stake, as every node does) still verify. A removal never empties the set: it waits
 * until someone has joined. Evidence counts once per (signer, height, round, vote type), only
 * for heights after the stake was bonded and before its unbonding ends.
 */
contract DatanetRegistry {
    // ---------------------------------------------------------------- types

    struct Params {
        /// Stake share that must sign, as a fraction: 2/3 exactly, the nodes' quorum
        /// (signedStake * 3 >= totalStake * 2); numerator and denominator at most 255.
        uint16 thresholdNumerator;
        uint16 thresholdDenominator;
        /// At most 2^96 - 1 wei.
        uint256 minStake;
        /// Seconds between a leave taking effect and the stake becoming withdrawable.
        uint64 unbondingDelay;
        /// Versions are anchored at multiples of it only (the manifest's anchorInterval): 1 .. 65,535.
        uint64 anchorInterval;
    }

    struct VersionHeader {
        uint64 height;
        bytes32 parent;
        bytes32 datasetRoot;
        uint64 recordCount;
        bytes32 attributionRoot;
        uint256 totalAttributed;
        bytes32 validatorSetHash;
        bytes32 version;
    }

    struct Vote {
        uint8 voteType;
        uint32 round;
        VersionHeader header;
    }

    /// A precommit of a certificate: the signer's index in the active set passed beside it, and the
    /// signature in ERC-2098 compact form (r, yParity << 255 | s).
    struct Signature {
        uint256 index;
        bytes32 r;
        bytes32 vs;
    }

    /// One storage slot per validator.
    struct Validator {
        uint96 stake;
        bool active;
        bool pendingJoin;
        bool pendingLeave;
        /// When a left validator's stake becomes withdrawable (0: not unbonding).
        uint64 unlockAt;
        /// Position + 1 in the active array (0: not in it).
        uint32 position;
        /// The last anchored height when this stake was bonded: evidence must be about a later height.
        uint40 since;
    }

    /// Field order is slot order.
    struct Datanet {
        // slot 0, the head: all a commit reads and writes but the roots
        uint40 lastHeight; // heights past 2^40 (a version a second for 34,000 years) are refused
        uint96 totalAttributed;
        uint96 totalFunded;
        uint16 anchorInterval; // commitVersion takes multiples of it only; 0: no such datanet
        bool setChangePending; // a join or a leave waits for the next commit
        // slot 1: staking configuration
        uint64 unbondingDelay;
        uint96 minStake;
        uint32 pendingLeaveCount; // validators with pendingLeave set
        uint8 thresholdNumerator; // 2/3 exactly: commitVersion uses the constant
        uint8 thresholdDenominator;
        // slots 2-4
        bytes32 lastVersion;
        bytes32 attributionRoot;
        bytes32 activeSetHash;
        // slot 5: what claims draw from, what was burned, the pending lists' cursors
        uint96 unclaimed; // totalFunded - totalClaimed
        uint96 slashed;
        uint32 joinCursor; // pendingJoins before it are applied
        uint32 leaveCursor; // pendingLeaves before it are applied
        // slot 6: the set's stake and its aggregate BLS key (held as code, Bls12381 below; 0: a
        // member has no key), one read for commitVersionBls
        uint96 totalStake;
        address aggregateKey;
        uint256[] active; // packed members, unordered
        address[] pendingJoins;
        address[] pendingLeaves;
    }

    // ---------------------------------------------------------------- constants

    bytes32 public constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)");
    bytes32 public constant HEADER_TYPEHASH = keccak256(
        "VersionHeader(uint64 height,bytes32 parent,bytes32 datasetRoot,uint64 recordCount,bytes32 attributionRoot,uint256 totalAttributed,bytes32 validatorSetHash,bytes32 version)"
    );
    bytes32 public constant VOTE_TYPEHASH = keccak256(
        "Vote(uint8 voteType,uint32 round,VersionHeader header)VersionHeader(uint64 height,bytes32 parent,bytes32 datasetRoot,uint64 recordCount,bytes32 attributionRoot,uint256 totalAttributed,bytes32 validatorSetHash,bytes32 version)"
    );
    uint8 public constant PREVOTE = 1;
    uint8 public constant PRECOMMIT = 2;

    uint256 private constant STAKE_MASK = 0xffffffffffffffffffffffff; // type(uint96).max
    /// Joins plus leaves applied by one commit at most.
    uint256 public constant MAX_SET_CHANGES = 32;
    /// IETF BLS ciphersuites (proof-of-possession scheme, signatures in G1): a precommit's
    /// signature, and the proof that a key's owner holds its secret (refuses rogue keys).
    bytes private constant BLS_SIG_DST = "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";
    bytes private constant BLS_POP_DST = "BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

    // ---------------------------------------------------------------- storage

    mapping(bytes32 => Datanet) private _datanets;
    mapping(bytes32 => mapping(address => Validator)) private _validators;
    mapping(bytes32 => mapping(uint64 => bytes32)) private _datasetRoots;
    mapping(bytes32 => mapping(address => uint256)) private _claimed;
    /// Inference fees escrowed, by datanet, payer and event id (the EIP-712 digest of the unsigned
    /// event): keyed by payer, so nobody can take an event id first and block its operator.
    mapping(bytes32 => mapping(address => mapping(bytes32 => uint256))) private _inferencePaid;
    /// Offences already slashed, by keccak256(signer, height, round, voteType).
    mapping(bytes32 => mapping(bytes32 => bool)) private _evidenceUsed;
    /// Each validator's BLS key (256 bytes, G2), held as the code of a contract of its own: reading
    /// it costs ~2,700 gas where 8 storage slots would cost 16,800. Registered once, never changed.
    mapping(address => address) private _blsKeys;

    // ---------------------------------------------------------------- events

    event DatanetCreated(bytes32 indexed datanetId, address indexed creator, Params params, address[] validators, uint256[] stakes);
    event ValidatorJoinRequested(bytes32 indexed datanetId, address indexed validator, uint256 stake, bytes peerId);
    event ValidatorLeaveRequested(bytes32 indexed datanetId, address indexed validator);
    event ValidatorActivated(bytes32 indexed datanetId, address indexed validator, uint256 stake, uint64 height);
    event ValidatorDeactivated(bytes32 indexed datanetId, address indexed validator, uint64 height, uint64 unlockAt);
    event StakeWithdrawn(bytes32 indexed datanetId, address indexed validator, uint256 amount);
    /// The header's other fields (parent, recordCount, validatorSetHash) are in the transaction's calldata.
    event VersionCommitted(
        bytes32 indexed datanetId,
        uint64 indexed height,
        bytes32 indexed version,
        bytes32 datasetRoot,
        bytes32 attributionRoot,
        uint256 totalAttributed,
        uint32 round,
        address submitter
    );
    event Funded(bytes32 indexed datanetId, address indexed from, uint256 amount, uint256 totalFunded);
    event InferencePaid(bytes32 indexed datanetId, bytes32 indexed eventId, address indexed payer, uint256 amount);
    event Claimed(bytes32 indexed datanetId, address indexed account, uint256 amount, uint256 cumulativeAmount);
    event Slashed(bytes32 indexed datanetId, address indexed validator, uint256 amount, address reporter);
    event BlsKeyRegistered(address indexed validator, bytes key);

    // ---------------------------------------------------------------- errors

    error DatanetExists(bytes32 datanetId);
    error UnknownDatanet(bytes32 datanetId);
    error InvalidParams();
    error InvalidValidatorSet();
    error DuplicateValidator(address validator);
    error StakeTooLow(uint256 stake, uint256 minStake);
    error ValueTooLarge(uint256 value, uint256 max);
    error WrongValue(uint256 sent, uint256 expected);
    error AlreadyValidator(address validator);
    error NotActiveValidator(address validator);
    error LeaveAlreadyRequested(address validator);
    error LastValidator();
    error NothingToWithdraw(address validator);
    error StillBonded(uint64 unlockAt);
    error StaleHeight(uint64 height, uint64 lastHeight);
    error NotAnchorHeight(uint64 height, uint64 anchorInterval);
    error WrongParent(bytes32 parent, bytes32 expected);
    error OverAttributed(uint256 totalAttributed, uint256 totalFunded);
    error AttributionDecreased(uint256 totalAttributed, uint256 previous);
    error WrongActiveSet(bytes32 given, bytes32 expected);
    error InvalidSignature(uint256 position);
    error UnsortedOrDuplicateSigner(uint256 position, uint256 index);
    error SignerIndexOutOfRange(uint256 position, uint256 index);
    error WrongSigner(uint256 position, address recovered, address expected);
    error InsufficientStake(uint256 signedStake, uint256 totalStake);
    error ZeroAmount();
    error InferenceAlreadyPaid(bytes32 eventId);
    error InvalidProof();
    error NothingToClaim(uint256 cumulativeAmount, uint256 claimed);
    error InsufficientFunds(uint256 requested, uint256 available);
    error TransferFailed();
    error NotConflicting();
    error SignersDiffer(address a, address b);
    error NothingToSlash(address validator);
    error EvidenceUsed(address validator, uint64 height);
    error EvidenceOutOfWindow(uint64 height, uint64 bondedAfter, uint64 unlockAt);
    error UnknownVersion(uint64 height);
    error BlsKeyExists(address validator);
    error InvalidBlsKey();
    error NoAggregateKey(bytes32 datanetId);
    error UnsortedOrDuplicateAbsent(uint256 position, address validator);
    error InvalidAggregateSignature();
    error KeyStoreFailed();

    // ---------------------------------------------------------------- datanets

    /**
     * @notice Registers the datanet of a manifest: its id is the sha2-256 of the manifest's
     * dag-cbor bytes (the multihash digest of the manifest CID), and its genesis validators,
     * their stakes and the anchor interval are read from those bytes, so a registration can
     * only be the manifest's own, whoever sends it (issue 12 item 4). msg.value funds the genesis
     * stakes exactly (they belong to the validators, as any stake). The parameters a manifest does
     * not name are bounded by it: minStake at most the smallest genesis stake.
     * `params.anchorInterval` must repeat the manifest's, so the event describes the registration whole.
     */
    function createDatanet(bytes calldata manifest, Params calldata params) external payable returns (bytes32 datanetId) {
        datanetId = sha256(manifest);
        (address[] memory validators, uint256[] memory stakes, uint256 anchorInterval) = ManifestReader.read(manifest);
        Datanet storage d = _datanets[datanetId];
        if (d.anchorInterval != 0) revert DatanetExists(datanetId);
        // The threshold is the nodes' quorum, 2/3 exactly (another would refuse their certificates
        // or accept less than they do); a zero minStake or unbonding delay would leave evidence no stake.
        if (
            params.thresholdDenominator == 0 || params.thresholdDenominator > type(uint8).max
                || uint256(params.thresholdNumerator) * 3 != uint256(params.thresholdDenominator) * 2
                || params.minStake == 0 || params.minStake > STAKE_MASK || params.unbondingDelay == 0
                || params.anchorInterval != anchorInterval
                || anchorInterval == 0 || anchorInterval > type(uint16).max
        ) revert InvalidParams();
        if (validators.length == 0) revert InvalidValidatorSet();
        uint256 sum;
        for (uint256 i = 0; i < validators.length; i++) {
            address a = validators[i];
            uint256 stake = stakes[i];
            if (a == address(0)) revert InvalidValidatorSet();
            if (stake < params.minStake || stake == 0) revert StakeTooLow(stake, params.minStake);
            if (stake > STAKE_MASK) revert ValueTooLarge(stake, STAKE_MASK);
            Validator storage v = _validators[datanetId][a];
            if (v.active) revert DuplicateValidator(a);
            d.active.push(_member(a, stake));
            _validators[datanetId][a] = Validator({
                stake: uint96(stake),
                active: true,
                pendingJoin: false,
                pendingLeave: false,
                unlockAt: 0,
                position: uint32(d.active.length),
                since: 0
            });
            sum += stake;
        }
        if (msg.value != sum) revert WrongValue(msg.value, sum);
        if (sum > STAKE_MASK) revert ValueTooLarge(sum, STAKE_MASK);
        d.thresholdNumerator = uint8(params.thresholdNumerator);
        d.thresholdDenominator = uint8(params.thresholdDenominator);
        d.unbondingDelay = params.unbondingDelay;
        d.anchorInterval = uint16(params.anchorInterval);
        d.minStake = uint96(params.minStake);
        d.totalStake = uint96(sum);
        _rehash(d);
        d.aggregateKey = _aggregateKey(d.active);
        emit DatanetCreated(datanetId, msg.sender, params, validators, stakes);
    }

    /// @notice Adds to the datanet's reward pool.
    function fund(bytes32 datanetId) external payable {
        Datanet storage d = _existing(datanetId);
        if (msg.value == 0) revert ZeroAmount();
        uint256 total = uint256(d.totalFunded) + msg.value;
        if (total > STAKE_MASK) revert ValueTooLarge(total, STAKE_MASK);
        d.totalFunded = uint96(total);
        d.unclaimed += uint96(msg.value);
        emit Funded(datanetId, msg.sender, msg.value, total);
    }

    /**
     * @notice Escrows an inference event's fee: it funds the datanet's attribution, so what
     * the validators attribute for the event can never exceed what was paid in. One payment
     * per payer and event id (nodes take the payment of the event's operator only).
     */
    function payInference(bytes32 datanetId, bytes32 eventId) external payable {
        Datanet storage d = _existing(datanetId);
        if (msg.value == 0) revert ZeroAmount();
        mapping(bytes32 => uint256) storage paid = _inferencePaid[datanetId][msg.sender];
        if (paid[eventId] != 0) revert InferenceAlreadyPaid(eventId);
        uint256 total = uint256(d.totalFunded) + msg.value;
        if (total > STAKE_MASK) revert ValueTooLarge(total, STAKE_MASK);
        paid[eventId] = msg.value;
        d.totalFunded = uint96(total);
        d.unclaimed += uint96(msg.value);
        emit InferencePaid(datanetId, eventId, msg.sender, msg.value);
    }

    /// @notice The fee `payer` escrowed for an inference event (0 when none).
    function inferencePaid(bytes32 datanetId, address payer, bytes32 eventId) external view returns (uint256) {
        return _inferencePaid[datanetId][payer][eventId];
    }

    // ---------------------------------------------------------------- validators

    /// @notice Stakes msg.value to join; the validator becomes active after the next committed version.
    function joinValidator(bytes32 datanetId, bytes calldata peerId) external payable {
        Datanet storage d = _existing(datanetId);
        Validator storage v = _validators[datanetId][msg.sender];
        if (v.active || v.pendingJoin || v.stake != 0) revert AlreadyValidator(msg.sender);
        if (msg.value < d.minStake || msg.value == 0) revert StakeTooLow(msg.value, d.minStake);
        if (msg.value > STAKE_MASK) revert ValueTooLarge(msg.value, STAKE_MASK);
        v.stake = uint96(msg.value);
        v.pendingJoin = true;
        v.unlockAt = 0;
        v.since = d.lastHeight;
        d.pendingJoins.push(msg.sender);
        d.setChangePending = true;
        emit ValidatorJoinRequested(datanetId, msg.sender, msg.value, peerId);
    }

    /// @notice Leaves the set at the next committed version; the stake unbonds for unbondingDelay after it.
    function leaveValidator(bytes32 datanetId) external {
        Datanet storage d = _existing(datanetId);
        Validator storage v = _validators[datanetId][msg.sender];
        if (!v.active) revert NotActiveValidator(msg.sender);
        if (v.pendingLeave) revert LeaveAlreadyRequested(msg.sender);
        if (d.active.length - d.pendingLeaveCount <= 1) revert LastValidator();
        v.pendingLeave = true;
        d.pendingLeaveCount++;
        d.setChangePending = true;
        d.pendingLeaves.push(msg.sender);
        emit ValidatorLeaveRequested(datanetId, msg.sender);
    }

    /// @notice Withdraws the stake of a validator whose leave took effect at least unbondingDelay ago.
    function withdraw(bytes32 datanetId) external {
        _existing(datanetId);
        Validator storage v = _validators[datanetId][msg.sender];
        if (v.active || v.pendingJoin || v.stake == 0 || v.unlockAt == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < v.unlockAt) revert StillBonded(v.unlockAt);
        uint256 amount = v.stake;
        v.stake = 0;
        v.unlockAt = 0;
        emit StakeWithdrawn(datanetId, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------- versions

    /**
     * @notice Anchors a finalized version. `members` is the active set as packed members
     * (`uint256(uint160(address)) << 96 | stake`) sorted ascending: what `activeSet(datanetId)`
     * returns. `signatures` are precommits (voteType 2, `round`) over `header`, each naming its
     * signer's index in `members`, indices strictly increasing (so signers are distinct), whose
     * stakes together hold at least the threshold fraction of the set's stake. `header.height`
     * is a multiple of the datanet's anchorInterval: set changes then land at the heights every
     * node expects, whoever anchors (an off-schedule height would move them).
     */
    function commitVersion(
        bytes32 datanetId,
        uint32 round,
        VersionHeader calldata header,
        uint256[] calldata members,
        Signature[] calldata signatures
    ) external {
        Datanet storage d = _existing(datanetId);
        _checkHead(d, header);
        uint256 total = _setStake(d, members);
        uint256 signed = _signedStake(_digest(datanetId, _voteHash(PRECOMMIT, round, header)), members, signatures);
        if (total == 0 || signed * 3 < total * 2) {
            revert InsufficientStake(signed, total);
        }
        _commit(datanetId, d, round, header);
    }

    /**
     * @notice Anchors a finalized version on one aggregate BLS signature (Bls12381 below): the sum
     * of the precommit signatures (voteType 2, `round`, over `header`'s EIP-712 digest) of every
     * active member but `absent` (sorted ascending, distinct), checked against the set's aggregate
     * key less the absent members' keys. The gas does not grow with the signers, only with the
     * absent: cheaper than `commitVersion` for large sets. Needs every member's key registered
     * (`registerBlsKey`) when the set last changed, or `refreshAggregateKey` since.
     */
    function commitVersionBls(
        bytes32 datanetId,
        uint32 round,
        VersionHeader calldata header,
        address[] calldata absent,
        bytes calldata signature
    ) external {
        Datanet storage d = _existing(datanetId);
        _checkHead(d, header);
        (bytes memory key, uint256 signed, uint256 total) = _signersKey(datanetId, d, absent);
        if (total == 0 || signed * 3 < total * 2) revert InsufficientStake(signed, total);
        if (signature.length != 128) revert InvalidAggregateSignature();
        bytes memory digest = abi.encodePacked(_digest(datanetId, _voteHash(PRECOMMIT, round, header)));
        if (!Bls12381.verify(signature, digest, BLS_SIG_DST, key)) revert InvalidAggregateSignature();
        _commit(datanetId, d, round, header);
    }

    /// The aggregate key of the active members but `absent`, their stake and the set's.
    function _signersKey(bytes32 datanetId, Datanet storage d, address[] calldata absent)
        private
        view
        returns (bytes memory key, uint256 signed, uint256 total)
    {
        address aggregate = d.aggregateKey;
        if (aggregate == address(0)) revert NoAggregateKey(datanetId);
        key = new bytes(512); // the sum, then room for each absent member's key
        assembly ("memory-safe") {
            extcodecopy(aggregate, add(key, 0x20), 1, 0x100)
        }
        total = d.totalStake;
        signed = total;
        address previous;
        for (uint256 i = 0; i < absent.length; i++) {
            address a = absent[i];
            if (a <= previous) revert UnsortedOrDuplicateAbsent(i, a);
            previous = a;
            Validator storage v = _validators[datanetId][a];
            if (!v.active) revert NotActiveValidator(a);
            // a slashed member (stake 0) still weighs in the set until the next anchor
            uint256 weight = v.stake;
            if (weight == 0) weight = d.active[v.position - 1] & STAKE_MASK;
            signed -= weight;
            Bls12381.accumulate(key, _blsKeys[a], true);
        }
        assembly ("memory-safe") {
            mstore(key, 0x100) // the sum alone
        }
    }

    function _commit(bytes32 datanetId, Datanet storage d, uint32 round, VersionHeader calldata header) private {
        d.lastHeight = uint40(header.height);
        d.totalAttributed = uint96(header.totalAttributed);
        d.lastVersion = header.version;
        d.attributionRoot = header.attributionRoot;
        _datasetRoots[datanetId][header.height] = header.datasetRoot;
        emit VersionCommitted(
            datanetId, header.height, header.version, header.datasetRoot, header.attributionRoot, header.totalAttributed, round, msg.sender
        );
        if (d.setChangePending) _applySetChanges(datanetId, d, header.height);
    }

    /// Height above the last and on schedule, the parent link, attribution within the funds and never decreasing.
    function _checkHead(Datanet storage d, VersionHeader calldata header) private view {
        uint64 last = d.lastHeight;
        if (header.height <= last) revert StaleHeight(header.height, last);
        if (header.height > type(uint40).max) revert ValueTooLarge(header.height, type(uint40).max);
        uint64 interval = d.anchorInterval;
        if (header.height % interval != 0) revert NotAnchorHeight(header.height, interval);
        if (last > 0 && header.height == last + 1 && header.parent != d.lastVersion) {
            revert WrongParent(header.parent, d.lastVersion);
        }
        uint256 funded = d.totalFunded;
        if (header.totalAttributed > funded) revert OverAttributed(header.totalAttributed, funded);
        uint256 previous = d.totalAttributed;
        if (header.totalAttributed < previous) revert AttributionDecreased(header.totalAttributed, previous);
    }

    /// Checks `members` is the active set (one hash for all of it) and returns its total stake.
    function _setStake(Datanet storage d, uint256[] calldata members) private view returns (uint256 total) {
        bytes32 setHash;
        assembly ("memory-safe") {
            let p := mload(0x40)
            let size := shl(5, members.length)
            calldatacopy(p, members.offset, size)
            setHash := keccak256(p, size)
            for { let i := 0 } lt(i, size) { i := add(i, 0x20) } {
                total := add(total, and(mload(add(p, i)), STAKE_MASK))
            }
        }
        bytes32 expected = d.activeSetHash;
        if (setHash != expected) revert WrongActiveSet(setHash, expected);
    }

    /// The stake of the distinct members that signed `digest`: each signature recovers to the member at its index.
    function _signedStake(bytes32 digest, uint256[] calldata members, Signature[] calldata signatures)
        private
        view
        returns (uint256 signed)
    {
        uint256 next; // the lowest index the next signature may name
        uint256 n = members.length;
        for (uint256 i = 0; i < signatures.length; i++) {
            uint256 index;
            bytes32 r;
            bytes32 vs;
            assembly ("memory-safe") {
                // Signature is static (3 words): the ABI decoder checked the array lies within calldata
                let p := add(signatures.offset, mul(i, 0x60))
                index := calldataload(p)
                r := calldataload(add(p, 0x20))
                vs := calldataload(add(p, 0x40))
            }
            if (index < next) revert UnsortedOrDuplicateSigner(i, index);
            if (index >= n) revert SignerIndexOutOfRange(i, index);
            address signer = _recoverCompact(digest, r, vs);
            if (signer == address(0)) revert InvalidSignature(i);
            uint256 member;
            assembly ("memory-safe") {
                member := calldataload(add(members.offset, shl(5, index)))
            }
            address expected = address(uint160(member >> 96));
            if (signer != expected) revert WrongSigner(i, signer, expected);
            unchecked {
                signed += member & STAKE_MASK;
                next = index + 1;
            }
        }
    }

    /// ecrecover of an ERC-2098 signature (v = 27 + the top bit of vs); address(0) when invalid or
    /// malleable (s in the upper half order, refused as OpenZeppelin's ECDSA does).
    function _recoverCompact(bytes32 digest, bytes32 r, bytes32 vs) private view returns (address signer) {
        assembly ("memory-safe") {
            let s := and(vs, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
            if iszero(gt(s, 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0)) {
                let p := mload(0x40) // scratch past the free memory pointer, not allocated
                mstore(p, digest)
                mstore(add(p, 0x20), add(27, shr(255, vs)))
                mstore(add(p, 0x40), r)
                mstore(add(p, 0x60), s)
                let ok := staticcall(gas(), 0x01, p, 0x80, 0x00, 0x20)
                // the precompile returns nothing for a signature with no signer
                if and(ok, eq(returndatasize(), 0x20)) { signer := mload(0x00) }
            }
        }
    }

    /// Applies up to MAX_SET_CHANGES pending joins, then leaves (slashed validators among them);
    /// what is left waits for the next commit. A leave that would empty the set waits for a join.
    function _applySetChanges(bytes32 datanetId, Datanet storage d, uint64 height) private {
        uint256 budget = MAX_SET_CHANGES;
        address[] storage joins = d.pendingJoins;
        uint256 n = joins.length;
        uint256 i = d.joinCursor;
        uint96 added;
        bytes memory sum = _heldAggregate(d);
        for (; i < n && budget > 0; i++) {
            budget--;
            address a = joins[i];
            Validator storage v = _validators[datanetId][a];
            if (!v.pendingJoin) continue; // slashed meanwhile
            uint96 stake = v.stake;
            d.active.push(_member(a, stake));
            v.pendingJoin = false;
            v.active = true;
            v.position = uint32(d.active.length);
            added += stake;
            sum = _withKey(sum, a, false);
            emit ValidatorActivated(datanetId, a, stake, height);
        }
        d.totalStake += added;
        bool changed = added != 0;
        d.joinCursor = uint32(i == n ? 0 : i);
        if (i == n) _clear(joins);
        bool pending = i < n;

        address[] storage leaves = d.pendingLeaves;
        n = leaves.length;
        i = d.leaveCursor;
        for (; i < n && budget > 0; i++) {
            address a = leaves[i];
            Validator storage v = _validators[datanetId][a];
            if (d.active.length == 1 && v.pendingLeave) break; // the last member stays until someone joins
            budget--;
            if (!v.pendingLeave) continue;
            changed = true;
            v.pendingLeave = false;
            d.pendingLeaveCount--;
            v.unlockAt = v.stake == 0 ? 0 : uint64(block.timestamp) + d.unbondingDelay; // a slashed stake is gone: nothing unbonds
            _removeActive(datanetId, d, v);
            sum = _withKey(sum, a, true);
            emit ValidatorDeactivated(datanetId, a, height, v.unlockAt);
        }
        d.leaveCursor = uint32(i == n ? 0 : i);
        if (i == n) _clear(leaves);
        d.setChangePending = pending || i < n;
        if (changed) {
            _rehash(d);
            d.aggregateKey = sum.length != 0 ? _storeKey(_trimmed(sum)) : _aggregateKey(d.active);
        }
    }

    /// The set's aggregate key with room for one more (512 bytes), or empty when it has none.
    function _heldAggregate(Datanet storage d) private view returns (bytes memory sum) {
        address aggregate = d.aggregateKey;
        if (aggregate == address(0)) return sum;
        sum = new bytes(512);
        assembly ("memory-safe") {
            extcodecopy(aggregate, add(sum, 0x20), 1, 0x100)
        }
    }

    /// `sum` plus (or less) `a`'s key: the aggregate follows the set change by change, rather than
    /// being summed again from every member (~5.5k gas a member). Empty when `a` has no key.
    function _withKey(bytes memory sum, address a, bool leaving) private view returns (bytes memory) {
        if (sum.length == 0) return sum;
        address key = _blsKeys[a];
        if (key == address(0)) return new bytes(0);
        Bls12381.accumulate(sum, key, leaving);
        return sum;
    }

    function _trimmed(bytes memory sum) private pure returns (bytes memory) {
        assembly ("memory-safe") {
            mstore(sum, 0x100)
        }
        return sum;
    }

    /// Empties a pending list by its length alone: the stale slots are overwritten by later pushes.
    function _clear(address[] storage list) private {
        assembly ("memory-safe") {
            sstore(list.slot, 0)
        }
    }

    /// Swap-and-pop out of the active array; the caller rehashes.
    function _removeActive(bytes32 datanetId, Datanet storage d, Validator storage v) private {
        uint256 position = v.position;
        uint256 lastPosition = d.active.length;
        uint256 member = d.active[position - 1];
        if (position != lastPosition) {
            uint256 moved = d.active[lastPosition - 1];
            d.active[position - 1] = moved;
            _validators[datanetId][address(uint160(moved >> 96))].position = uint32(position);
        }
        d.active.pop();
        v.position = 0;
        v.active = false;
        d.totalStake -= uint96(member & STAKE_MASK); // the set's weight: a slashed stake still counted until now
    }

    /// activeSetHash = keccak256 of the packed members sorted ascending, 32 bytes each.
    function _rehash(Datanet storage d) private {
        d.activeSetHash = keccak256(abi.encodePacked(_sorted(d.active)));
    }

    /// The sum of the members' BLS keys, stored as code; address(0) when one has none.
    function _aggregateKey(uint256[] memory members) private returns (address) {
        bytes memory sum = new bytes(512); // the point at infinity, then room for each key
        for (uint256 i = 0; i < members.length; i++) {
            address key = _blsKeys[address(uint160(members[i] >> 96))];
            if (key == address(0)) return address(0);
            Bls12381.accumulate(sum, key, false);
        }
        return _storeKey(_trimmed(sum));
    }

    /// A contract whose code is a STOP then `key` (so it cannot be called), SSTORE2-style.
    function _storeKey(bytes memory key) private returns (address pointer) {
        // init code: PUSH2 size, DUP1, PUSH1 12, PUSH1 0, CODECOPY, PUSH1 0, RETURN; then the code
        bytes memory init = abi.encodePacked(hex"61", uint16(key.length + 1), hex"80600c6000396000f300", key);
        assembly ("memory-safe") {
            pointer := create(0, add(init, 0x20), mload(init))
        }
        if (pointer == address(0)) revert KeyStoreFailed();
    }

    function _loadKey(address pointer) private view returns (bytes memory key) {
        key = new bytes(256);
        assembly ("memory-safe") {
            extcodecopy(pointer, add(key, 0x20), 1, 256)
        }
    }

    /// Sorts packed members ascending in place (insertion sort: sets are small).
    function _sorted(uint256[] memory members) private pure returns (uint256[] memory) {
        uint256 n = members.length;
        unchecked {
            for (uint256 i = 1; i < n; i++) {
                uint256 m = members[i];
                uint256 j = i;
                while (j > 0 && members[j - 1] > m) {
                    members[j] = members[j - 1];
                    j--;
                }
                members[j] = m;
            }
        }
        return members;
    }

    /// @notice Whether `recordHash` is in the dataset of the committed version at `height` (src/merkle/tree.ts).
    function verifyRecord(bytes32 datanetId, uint64 height, bytes32 recordHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        _existing(datanetId);
        bytes32 root = _datasetRoots[datanetId][height];
        if (root == bytes32(0)) revert UnknownVersion(height);
        bytes32 leaf = sha256(abi.encodePacked(bytes1(0x00), recordHash));
        return MerkleProof.verifyCalldata(proof, root, leaf, _sha256Pair);
    }

    function _sha256Pair(bytes32 a, bytes32 b) private pure returns (bytes32) {
        return a < b ? sha256(abi.encodePacked(a, b)) : sha256(abi.encodePacked(b, a));
    }

    // ---------------------------------------------------------------- rewards

    /**
     * @notice Pays `account` its cumulative attributed amount (a leaf of the latest attribution
     * root, OpenZeppelin StandardMerkleTree encoding of (address, uint256)) minus what it claimed.
     */
    function claim(bytes32 datanetId, address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
        Datanet storage d = _datanets[datanetId];
        bytes32 root = d.attributionRoot;
        if (root == bytes32(0)) {
            _existing(datanetId);
            revert InvalidProof(); // nothing attributed yet
        }
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidProof();
        uint256 already = _claimed[datanetId][account];
        if (cumulativeAmount <= already) revert NothingToClaim(cumulativeAmount, already);
        uint256 amount = cumulativeAmount - already;
        uint256 available = d.unclaimed;
        if (amount > available) revert InsufficientFunds(amount, available);
        _claimed[datanetId][account] = cumulativeAmount;
        d.unclaimed = uint96(available - amount);
        emit Claimed(datanetId, account, amount, cumulativeAmount);
        _pay(account, amount);
    }

    // ---------------------------------------------------------------- slashing

    /**
     * @notice Evidence of equivocation: two different votes for one (height, round, type) by one
     * signer. Burns its stake at once; an active validator leaves the set at the next anchor (the
     * set that decided the heights up to it keeps its weight there, as in every node). Each
     * offence counts once, and only against a stake bonded before its height and not yet unbonded.
     */
    function slash(bytes32 datanetId, Vote calldata a, bytes calldata sigA, Vote calldata b, bytes calldata sigB) external {
        Datanet storage d = _existing(datanetId);
        address signer = _equivocator(datanetId, a, sigA, b, sigB);
        Validator storage v = _validators[datanetId][signer];
        uint96 amount = v.stake;
        if (amount == 0) revert NothingToSlash(signer);
        _useEvidence(datanetId, v, signer, a);
        if (v.active && !v.pendingLeave) {
            v.pendingLeave = true;
            d.pendingLeaveCount++;
            d.pendingLeaves.push(signer);
            d.setChangePending = true;
        }
        v.pendingJoin = false;
        v.stake = 0;
        v.unlockAt = 0;
        d.slashed += amount; // burned: stays in the contract, never paid out
        emit Slashed(datanetId, signer, amount, msg.sender);
    }

    /// The signer of two different votes for one (height, round, type).
    function _equivocator(bytes32 datanetId, Vote calldata a, bytes calldata sigA, Vote calldata b, bytes calldata sigB)
        private
        view
        returns (address signer)
    {
        if (a.voteType != b.voteType || a.round != b.round || a.header.height != b.header.height) revert NotConflicting();
        bytes32 hashA = _voteHash(a.voteType, a.round, a.header);
        bytes32 hashB = _voteHash(b.voteType, b.round, b.header);
        if (hashA == hashB) revert NotConflicting();
        signer = _recover(_digest(datanetId, hashA), sigA, 0);
        address signerB = _recover(_digest(datanetId, hashB), sigB, 1);
        if (signer != signerB) revert SignersDiffer(signer, signerB);
    }

    /// Records the offence; refuses it when already used, or outside the stake's bonded window.
    function _useEvidence(bytes32 datanetId, Validator storage v, address signer, Vote calldata a) private {
        uint64 height = a.header.height;
        bytes32 offence = keccak256(abi.encode(signer, height, a.round, a.voteType));
        if (_evidenceUsed[datanetId][offence]) revert EvidenceUsed(signer, height);
        uint64 unlockAt = v.unlockAt;
        if (height <= v.since || (unlockAt != 0 && block.timestamp >= unlockAt)) revert EvidenceOutOfWindow(height, v.since, unlockAt);
        _evidenceUsed[datanetId][offence] = true;
    }

    // ---------------------------------------------------------------- BLS keys

    /**
     * @notice Registers msg.sender's BLS key (G2, 256 bytes in EIP-2537's encoding) with a proof of
     * possession: its signature (G1, 128 bytes) over msg.sender || key under the PoP ciphersuite.
     * Without the proof, a key chosen as another's key less the rest of a set (a rogue key) would
     * let one member sign for the whole set; binding the sender keeps anyone from registering a
     * key another proved. Once per address; the datanets it is active in take it at their next
     * set change or `refreshAggregateKey`.
     */
    function registerBlsKey(bytes calldata key, bytes calldata proof) external {
        if (_blsKeys[msg.sender] != address(0)) revert BlsKeyExists(msg.sender);
        if (key.length != 256 || proof.length != 128) revert InvalidBlsKey();
        bytes memory k = key;
        if (Bls12381.isInfinity(k)) revert InvalidBlsKey();
        if (!Bls12381.verify(proof, abi.encodePacked(msg.sender, key), BLS_POP_DST, k)) revert InvalidBlsKey();
        _blsKeys[msg.sender] = _storeKey(k);
        emit BlsKeyRegistered(msg.sender, key);
    }

    /// @notice Sums the active set's BLS keys again (once the last member without one registered
    /// it); refused while a member has none.
    function refreshAggregateKey(bytes32 datanetId) external {
        Datanet storage d = _existing(datanetId);
        address key = _aggregateKey(d.active);
        if (key == address(0)) revert NoAggregateKey(datanetId);
        d.aggregateKey = key;
    }

    /// @notice A validator's BLS key (256 bytes), empty when none.
    function blsKeyOf(address account) external view returns (bytes memory) {
        address pointer = _blsKeys[account];
        return pointer == address(0) ? new bytes(0) : _loadKey(pointer);
    }

    /// @notice The active set's aggregate BLS key (256 bytes), empty when a member has no key.
    function aggregateKeyOf(bytes32 datanetId) external view returns (bytes memory) {
        address pointer = _existing(datanetId).aggregateKey;
        return pointer == address(0) ? new bytes(0) : _loadKey(pointer);
    }

    // ---------------------------------------------------------------- views

    function domainSeparator(bytes32 datanetId) public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("datanet"), keccak256("1"), block.chainid, address(this), datanetId));
    }

    /// @notice The EIP-712 digest of a vote under the datanet's domain (what src/consensus/version.ts voteDigest computes).
    function voteDigest(bytes32 datanetId, Vote calldata vote) external view returns (bytes32) {
        return _digest(datanetId, _voteHash(vote.voteType, vote.round, vote.header));
    }

    /// @notice The active validator set: addresses and stakes (in no particular order).
    function validatorsOf(bytes32 datanetId) external view returns (address[] memory validators, uint256[] memory stakes) {
        Datanet storage d = _existing(datanetId);
        uint256 n = d.active.length;
        validators = new address[](n);
        stakes = new uint256[](n);
        for (uint256 i = 0; i < n; i++) {
            uint256 m = d.active[i];
            validators[i] = address(uint160(m >> 96));
            stakes[i] = m & STAKE_MASK;
        }
    }

    /// @notice The active set as `commitVersion` takes it: packed members sorted ascending, and their hash.
    function activeSet(bytes32 datanetId) external view returns (uint256[] memory members, bytes32 hash) {
        Datanet storage d = _existing(datanetId);
        members = _sorted(d.active);
        hash = d.activeSetHash;
    }

    function validator(bytes32 datanetId, address account) external view returns (Validator memory) {
        return _validators[datanetId][account];
    }

    function datanet(bytes32 datanetId)
        external
        view
        returns (
            Params memory params,
            uint64 lastHeight,
            bytes32 lastVersion,
            bytes32 attributionRoot,
            uint256 totalAttributed,
            uint256 totalFunded,
            uint256 totalClaimed,
            uint256 totalStake,
            uint256 slashed
        )
    {
        Datanet storage d = _existing(datanetId);
        params = Params({
            thresholdNumerator: d.thresholdNumerator,
            thresholdDenominator: d.thresholdDenominator,
            minStake: d.minStake,
            unbondingDelay: d.unbondingDelay,
            anchorInterval: d.anchorInterval
        });
        return (
            params,
            d.lastHeight,
            d.lastVersion,
            d.attributionRoot,
            d.totalAttributed,
            d.totalFunded,
            uint256(d.totalFunded) - d.unclaimed,
            d.totalStake,
            d.slashed
        );
    }

    function datasetRootAt(bytes32 datanetId, uint64 height) external view returns (bytes32) {
        return _datasetRoots[datanetId][height];
    }

    function claimed(bytes32 datanetId, address account) external view returns (uint256) {
        return _claimed[datanetId][account];
    }

    // ---------------------------------------------------------------- internals

    function _existing(bytes32 datanetId) private view returns (Datanet storage d) {
        d = _datanets[datanetId];
        if (d.anchorInterval == 0) revert UnknownDatanet(datanetId);
    }

    function _member(address a, uint256 stake) private pure returns (uint256) {
        return uint256(uint160(a)) << 96 | stake;
    }

    function _headerHash(VersionHeader calldata h) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                HEADER_TYPEHASH,
                h.height,
                h.parent,
                h.datasetRoot,
                h.recordCount,
                h.attributionRoot,
                h.totalAttributed,
                h.validatorSetHash,
                h.version
            )
        );
    }

    function _voteHash(uint8 voteType, uint32 round, VersionHeader calldata h) private pure returns (bytes32) {
        return keccak256(abi.encode(VOTE_TYPEHASH, voteType, round, _headerHash(h)));
    }

    function _digest(bytes32 datanetId, bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(datanetId), structHash));
    }

    function _recover(bytes32 digest, bytes calldata sig, uint256 index) private pure returns (address signer) {
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecoverCalldata(digest, sig);
        if (err != ECDSA.RecoverError.NoError || signer == address(0)) revert InvalidSignature(index);
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}

/**
 * @title ManifestReader
 * @notice Reads what the registry needs from a manifest's dag-cbor bytes (src/datanet/manifest.ts):
 * `validators` (an array of {address: "0x…" text, stake: decimal wei text}) and `anchorInterval`
 * (an unsigned integer); every other field is skipped. Anything that is not one well-formed CBOR
 * map naming both exactly once is refused. Each step consumes at least one byte, so the gas is
 * linear in the manifest's length.
 */
library ManifestReader {
    error MalformedManifest(uint256 offset);

    bytes32 private constant VALIDATORS = keccak256("validators");
    bytes32 private constant ANCHOR_INTERVAL = keccak256("anchorInterval");
    bytes32 private constant ADDRESS = keccak256("address");
    bytes32 private constant STAKE = keccak256("stake");
    uint8 private constant UINT = 0;
    uint8 private constant TEXT = 3;
    uint8 private constant ARRAY = 4;
    uint8 private constant MAP = 5;
    /// The manifest schema's bound on the genesis set.
    uint256 private constant MAX_VALIDATORS = 256;
    /// Decimal digits of the largest stake (2^96 - 1 has 29).
    uint256 private constant MAX_STAKE_DIGITS = 29;

    function read(bytes calldata m)
        internal
        pure
        returns (address[] memory validators, uint256[] memory stakes, uint256 anchorInterval)
    {
        (uint8 major, uint256 pairs, uint256 pos) = _head(m, 0);
        if (major != MAP) revert MalformedManifest(0);
        bool seenValidators;
        bool seenInterval;
        for (uint256 i = 0; i < pairs; i++) {
            bytes32 key;
            (key, pos) = _key(m, pos);
            if (key == VALIDATORS) {
                if (seenValidators) revert MalformedManifest(pos);
                seenValidators = true;
                (validators, stakes, pos) = _validators(m, pos);
            } else if (key == ANCHOR_INTERVAL) {
                if (seenInterval) revert MalformedManifest(pos);
                seenInterval = true;
                (major, anchorInterval, pos) = _head(m, pos);
                if (major != UINT) revert MalformedManifest(pos);
            } else {
                pos = _skip(m, pos);
            }
        }
        if (pos != m.length || !seenValidators || !seenInterval) revert MalformedManifest(pos);
    }

    function _validators(bytes calldata m, uint256 pos)
        private
        pure
        returns (address[] memory validators, uint256[] memory stakes, uint256 next)
    {
        (uint8 major, uint256 n, uint256 p) = _head(m, pos);
        if (major != ARRAY || n > MAX_VALIDATORS) revert MalformedManifest(pos);
        validators = new address[](n);
        stakes = new uint256[](n);
        for (uint256 i = 0; i < n; i++) {
            uint256 pairs;
            (major, pairs, p) = _head(m, p);
            if (major != MAP || pairs != 2) revert MalformedManifest(p);
            for (uint256 j = 0; j < 2; j++) {
                bytes32 key;
                (key, p) = _key(m, p);
                (uint256 start, uint256 end) = _text(m, p);
                if (key == ADDRESS && validators[i] == address(0)) validators[i] = _address(m[start:end], p);
                else if (key == STAKE && stakes[i] == 0) stakes[i] = _decimal(m[start:end], p);
                else revert MalformedManifest(p);
                p = end;
            }
        }
        next = p;
    }

    /// A map key: the keccak256 of a text string.
    function _key(bytes calldata m, uint256 pos) private pure returns (bytes32 key, uint256 next) {
        (uint256 start, uint256 end) = _text(m, pos);
        return (keccak256(m[start:end]), end);
    }

    function _text(bytes calldata m, uint256 pos) private pure returns (uint256 start, uint256 end) {
        (uint8 major, uint256 len, uint256 p) = _head(m, pos);
        if (major != TEXT || len > m.length - p) revert MalformedManifest(pos);
        return (p, p + len);
    }

    /// "0x" and 40 hex digits, either case (the node checks the EIP-55 checksum).
    function _address(bytes calldata s, uint256 pos) private pure returns (address) {
        if (s.length != 42 || s[0] != "0" || s[1] != "x") revert MalformedManifest(pos);
        uint160 a;
        for (uint256 i = 2; i < 42; i++) {
            uint8 c = uint8(s[i]);
            uint8 digit;
            if (c >= 0x30 && c <= 0x39) digit = c - 0x30;
            else if (c >= 0x61 && c <= 0x66) digit = c - 0x57;
            else if (c >= 0x41 && c <= 0x46) digit = c - 0x37;
            else revert MalformedManifest(pos);
            a = (a << 4) | digit;
        }
        return address(a);
    }

    /// A positive decimal without leading zeros, as the manifest schema writes wei.
    function _decimal(bytes calldata s, uint256 pos) private pure returns (uint256 v) {
        if (s.length == 0 || s.length > MAX_STAKE_DIGITS || s[0] == "0") revert MalformedManifest(pos);
        for (uint256 i = 0; i < s.length; i++) {
            uint8 c = uint8(s[i]);
            if (c < 0x30 || c > 0x39) revert MalformedManifest(pos);
            v = v * 10 + (c - 0x30);
        }
    }

    /// Steps over one data item, nested ones included (no recursion: a count of items still to read).
    function _skip(bytes calldata m, uint256 pos) private pure returns (uint256) {
        uint256 items = 1;
        while (items > 0) {
            items--;
            (uint8 major, uint256 value, uint256 p) = _head(m, pos);
            if (major == 2 || major == TEXT) {
                if (value > m.length - p) revert MalformedManifest(pos);
                p += value;
            } else if (major == ARRAY) {
                items += value;
            } else if (major == MAP) {
                items += 2 * value;
            } else if (major == 6) {
                items += 1;
            }
            pos = p;
        }
        return pos;
    }

    /// An item's major type and argument (a length, a count, an integer or a float's bits).
    function _head(bytes calldata m, uint256 pos) private pure returns (uint8 major, uint256 value, uint256 next) {
        if (pos >= m.length) revert MalformedManifest(pos);
        uint8 b = uint8(m[pos]);
        major = b >> 5;
        uint8 info = b & 31;
        next = pos + 1;
        if (info < 24) return (major, info, next);
        uint256 n;
        if (info == 24) n = 1;
        else if (info == 25) n = 2;
        else if (info == 26) n = 4;
        else if (info == 27) n = 8;
        else revert MalformedManifest(pos);
        if (n > m.length - next) revert MalformedManifest(pos);
        for (uint256 i = 0; i < n; i++) {
            value = (value << 8) | uint8(m[next + i]);
        }
        next += n;
    }
}

/**
 * @title Bls12381
 * @notice BLS signatures on BLS12-381 with the EIP-2537 precompiles (Prague), in the
 * minimal-signature-size variant: keys in G2, signatures in G1, so that hashing a message to the
 * curve costs two 5,500-gas maps, not two 23,800-gas ones. Points are in the precompiles' encoding:
 * an Fp element is 64 bytes (16 zero bytes, then 48 big-endian), G1 is x || y (128 bytes), G2 is
 * x.c0 || x.c1 || y.c0 || y.c1 (256 bytes), the point at infinity is all zeros. Hashing is
 * RFC 9380's hash_to_curve for G1 (expand_message_xmd with SHA-256, SSWU, random oracle), what
 * the noble curves library's `bls12_381.shortSignatures.hash` computes (src/chain/bls.ts). The pairing
 * precompile checks that its inputs are on the curve and in the subgroup.
 *
 * Each precompile is given the gas it costs, not all that is left: a failing precompile burns
 * what it was given, and bad input here is someone's mistake, not a reason to burn a block.
 */
library Bls12381 {
    error PrecompileFailed(uint256 precompile);

    uint256 private constant G1_ADD = 0x0b;
    uint256 private constant G2_ADD = 0x0d;
    uint256 private constant PAIRING = 0x0f;
    uint256 private constant MAP_FP_TO_G1 = 0x10;
    uint256 private constant G1_ADD_GAS = 375;
    uint256 private constant G2_ADD_GAS = 600;
    uint256 private constant MAP_FP_TO_G1_GAS = 5_500;
    uint256 private constant PAIRING_2_GAS = 37_700 + 2 * 32_600;
    /// The field modulus p: its top 16 bytes and its low 32 bytes.
    uint256 private constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 private constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;
    /// -G2's generator, so that a check is one product of pairings equal to 1.
    bytes private constant NEG_G2 =
        hex"00000000000000000000000000000000024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb80000000000000000000000000000000013e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e000000000000000000000000000000000d1b3cc2c7027888be51d9ef691d77bcb679afda66c73f17f9ee3837a55024f78c71363275a75d75d86bab79f74782aa0000000000000000000000000000000013fa4d4a0ad8b1ce186ed5061789213d993923066dddaf1040bc3ff59f825c78df74f2d75467e25e0f55f8a00fa030ed";

    /// Whether `signature` (G1) signs `message` under `key` (G2): e(signature, -G2) · e(H(message), key) == 1.
    function verify(bytes memory signature, bytes memory message, bytes memory dst, bytes memory key)
        internal
        view
        returns (bool)
    {
        bytes memory input = abi.encodePacked(signature, NEG_G2, new bytes(128), key);
        uint256 h;
        assembly ("memory-safe") {
            h := add(input, 0x1a0) // where H(message) goes: after the length word, 128 + 256 bytes
        }
        _hashToG1(message, dst, h);
        bytes memory out = _call(PAIRING, input, 32, PAIRING_2_GAS);
        return uint256(bytes32(out)) == 1;
    }

    /// `pair` is 512 bytes: a G2 sum, then room for one point. Adds to the sum the G2 key held as
    /// the code of `holder` past its first byte (Registry._storeKey), negated when `negate`:
    /// no allocation per key, so a set's keys are summed in one stretch of memory.
    function accumulate(bytes memory pair, address holder, bool negate) internal view {
        bool ok;
        assembly ("memory-safe") {
            let k := add(pair, 0x120)
            extcodecopy(holder, k, 1, 0x100)
            if negate {
                // both coordinates of y become p - y (0 stays 0)
                for { let q := add(k, 0x80) } lt(q, add(k, 0x100)) { q := add(q, 0x40) } {
                    let hi := mload(q)
                    let lo := mload(add(q, 0x20))
                    if or(hi, lo) {
                        mstore(add(q, 0x20), sub(P_LO, lo))
                        mstore(q, sub(sub(P_HI, hi), lt(P_LO, lo)))
                    }
                }
            }
            ok := staticcall(G2_ADD_GAS, G2_ADD, add(pair, 0x20), 0x200, add(pair, 0x20), 0x100)
            ok := and(ok, eq(returndatasize(), 0x100))
        }
        if (!ok) revert PrecompileFailed(G2_ADD);
    }

    /// Whether `a` is 256 zero bytes: the point at infinity of G2.
    function isInfinity(bytes memory a) internal pure returns (bool zero) {
        assembly ("memory-safe") {
            let acc := 0
            for { let i := 0 } lt(i, 0x100) { i := add(i, 0x20) } { acc := or(acc, mload(add(add(a, 0x20), i))) }
            zero := iszero(acc)
        }
    }

    /// RFC 9380 hash_to_curve into G1, written as 128 bytes at memory `out`: expand_message_xmd
    /// (SHA-256) to 128 bytes, two field elements (each 64 bytes mod p, by the modexp precompile),
    /// each mapped (the precompile clears the cofactor of each, which is linear, so their sum is
    /// the standard result), added. One scratch area past the free memory pointer, nothing allocated.
    function _hashToG1(bytes memory message, bytes memory dst, uint256 out) private view {
        bool ok = true;
        assembly ("memory-safe") {
            let m := mload(0x40)
            let dstLength := mload(dst)
            let length := mload(message)
            // b0 = H(Z_pad(64) || message || I2OSP(128, 2) || I2OSP(0, 1) || dst || I2OSP(len(dst), 1))
            mstore(m, 0)
            mstore(add(m, 0x20), 0)
            mcopy(add(m, 0x40), add(message, 0x20), length)
            let t := add(add(m, 0x40), length)
            mstore(t, shl(232, 0x008000)) // 0x0080, 0x00
            mcopy(add(t, 3), add(dst, 0x20), dstLength)
            mstore8(add(add(t, 3), dstLength), dstLength)
            ok := and(ok, staticcall(gas(), 0x02, m, add(add(0x44, length), dstLength), m, 0x20))
            let b0 := mload(m)
            // b_i = H((b0 xor b_(i-1)) || I2OSP(i, 1) || dst || I2OSP(len(dst), 1)), into u = m + 0x100
            let q := add(m, 0x20)
            mcopy(add(q, 0x21), add(dst, 0x20), dstLength)
            mstore8(add(add(q, 0x21), dstLength), dstLength)
            let u := add(m, 0x200)
            let previous := 0
            for { let i := 1 } lt(i, 5) { i := add(i, 1) } {
                mstore(q, xor(b0, previous))
                mstore8(add(q, 0x20), i)
                ok := and(ok, staticcall(gas(), 0x02, q, add(0x22, dstLength), add(u, shl(5, sub(i, 1))), 0x20))
                previous := mload(add(u, shl(5, sub(i, 1))))
            }
            // modexp input: sizes (64, 1, 48), the 64 bytes, exponent 1, p; the result into a field element
            let x := add(m, 0x300)
            mstore(x, 0x40)
            mstore(add(x, 0x20), 1)
            mstore(add(x, 0x40), 0x30)
            mstore8(add(x, 0xa0), 1)
            mstore(add(x, 0xa1), shl(128, P_HI))
            mstore(add(x, 0xb1), P_LO)
            let fields := add(m, 0x400) // two 64-byte field elements
            let points := add(m, 0x480) // two G1 points, 256 bytes
            for { let i := 0 } lt(i, 2) { i := add(i, 1) } {
                mstore(add(x, 0x60), mload(add(u, shl(6, i))))
                mstore(add(x, 0x80), mload(add(add(u, shl(6, i)), 0x20)))
                let f := add(fields, shl(6, i))
                mstore(f, 0)
                ok := and(ok, staticcall(gas(), 0x05, x, 0xd1, add(f, 0x10), 0x30))
                ok := and(ok, staticcall(MAP_FP_TO_G1_GAS, MAP_FP_TO_G1, f, 0x40, add(points, shl(7, i)), 0x80))
            }
            ok := and(ok, staticcall(G1_ADD_GAS, G1_ADD, points, 0x100, out, 0x80))
        }
        if (!ok) revert PrecompileFailed(MAP_FP_TO_G1);
    }

    function _call(uint256 precompile, bytes memory input, uint256 outLength, uint256 gasCost)
        private
        view
        returns (bytes memory out)
    {
        out = new bytes(outLength);
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(gasCost, precompile, add(input, 0x20), mload(input), add(out, 0x20), outLength)
            ok := and(ok, eq(returndatasize(), outLength))
        }
        if (!ok) revert PrecompileFailed(precompile);
    }
}
